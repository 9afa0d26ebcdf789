//! Running one attempt of a CLI: its output passes through unchanged (byte for byte, as
//! it comes) while each line also feeds the classifier; its exit status comes back.
//! Signals moonauth receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT) go to the child, which
//! starts with none of them blocked.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Instant, SystemTime};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::classify::{Classification, OutputClassifier};
use crate::error::{Error, Result};
use crate::runtime::Runtime;

/// One child process to run.
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables set for the child (a login directory, an API key, retry knobs).
    pub set: Vec<(String, String)>,
    /// Variables removed from the child's environment (competing credentials).
    pub remove: Vec<String>,
}

/// How an attempt ended.
pub struct Finished {
    pub exit_code: Option<i32>,
    /// The signal that ended the child, if any.
    pub signal: Option<i32>,
    pub classification: Classification,
    pub started: Instant,
    pub ended: Instant,
    /// A signal moonauth received and forwarded during the run.
    pub interrupted_by: Option<i32>,
}

/// Forwards termination signals to whichever child is running. Create it before any
/// other thread so the signals stay blocked everywhere but in its `sigwait`.
pub struct SignalForwarder {
    child: Arc<AtomicI32>,
    received: Arc<AtomicI32>,
}

const FORWARDED: [Signal; 4] = [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP, Signal::SIGQUIT];

impl SignalForwarder {
    pub fn install() -> Result<SignalForwarder> {
        let mut set = SigSet::empty();
        for s in FORWARDED {
            set.add(s);
        }
        set.thread_block()
            .map_err(|e| Error::io("blocking signals", e.into()))?;
        let child = Arc::new(AtomicI32::new(0));
        let received = Arc::new(AtomicI32::new(0));
        let (c, r) = (child.clone(), received.clone());
        std::thread::spawn(move || loop {
            let Ok(sig) = set.wait() else { return };
            r.store(sig as i32, Ordering::SeqCst);
            let pid = c.load(Ordering::SeqCst);
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        });
        Ok(SignalForwarder { child, received })
    }

    /// The last signal received, if any.
    pub fn received(&self) -> Option<i32> {
        match self.received.load(Ordering::SeqCst) {
            0 => None,
            s => Some(s),
        }
    }
}

/// Called in the forked child just before exec: unblocks every signal. The mask survives
/// exec, and `SignalForwarder` blocks the forwarded signals in moonauth, so without this the
/// CLI could be stopped by neither Ctrl-C, `docker stop`, `timeout` nor our forwarding.
///
/// Only async-signal-safe calls (`sigemptyset`, `sigprocmask`) run here: the child of a
/// multi-threaded process may do nothing else between fork and exec. Dispositions need no
/// reset: exec puts caught signals back to the default, and moonauth catches none (it
/// `sigwait`s); one inherited as ignored (`nohup`, `cmd &` in a script) is the invoker's
/// choice, which the CLI shares.
fn unblock_signals() -> std::io::Result<()> {
    nix::sys::signal::sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::empty()), None)
        .map_err(|errno| std::io::Error::from_raw_os_error(errno as i32))
}

enum Line {
    Out(String),
    Err(String),
}

/// Copies a child's stream to ours unchanged and sends each complete line to the classifier.
fn pump(mut from: impl Read + Send + 'static, to_stdout: bool, tx: mpsc::Sender<Line>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        let mut pending: Vec<u8> = Vec::new();
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let chunk = &buf[..n];
            // Pass through first: the caller sees output as soon as the CLI prints it.
            let _ = if to_stdout {
                let mut o = std::io::stdout().lock();
                o.write_all(chunk).and_then(|_| o.flush())
            } else {
                let mut e = std::io::stderr().lock();
                e.write_all(chunk).and_then(|_| e.flush())
            };
            pending.extend_from_slice(chunk);
            while let Some(pos) = pending.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line)
                    .trim_end_matches(['\n', '\r'])
                    .to_string();
                let _ = tx.send(if to_stdout { Line::Out(text) } else { Line::Err(text) });
            }
        }
        if !pending.is_empty() {
            let text = String::from_utf8_lossy(&pending).to_string();
            let _ = tx.send(if to_stdout { Line::Out(text) } else { Line::Err(text) });
        }
    })
}

/// Runs the child to completion, passing its output through and classifying it.
pub fn run(spec: &ChildSpec, runtime: Runtime, signals: &SignalForwarder) -> Result<Finished> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args);
    for var in &spec.remove {
        cmd.env_remove(var);
    }
    for (k, v) in &spec.set {
        cmd.env(k, v);
    }
    cmd.stdin(Stdio::inherit())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // SAFETY: `unblock_signals` makes only async-signal-safe calls and touches no memory
    // shared with the parent, as `pre_exec` requires.
    unsafe {
        cmd.pre_exec(unblock_signals);
    }
    let started = Instant::now();
    let mut child = cmd.spawn().map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::CommandNotFound {
            command: spec.program.display().to_string(),
        },
        _ => Error::CommandNotExecutable {
            command: spec.program.display().to_string(),
            reason: e.to_string(),
        },
    })?;
    signals.child.store(child.id() as i32, Ordering::SeqCst);
    let (tx, rx) = mpsc::channel();
    let out = pump(child.stdout.take().expect("stdout was piped"), true, tx.clone());
    let err = pump(child.stderr.take().expect("stderr was piped"), false, tx);
    let mut classifier = OutputClassifier::new(runtime);
    for line in rx {
        match line {
            Line::Out(l) => classifier.stdout_line(&l),
            Line::Err(l) => classifier.stderr_line(&l),
        }
    }
    let _ = out.join();
    let _ = err.join();
    let status = child.wait().map_err(|e| Error::io("waiting for the CLI", e))?;
    signals.child.store(0, Ordering::SeqCst);
    let ended = Instant::now();
    use std::os::unix::process::ExitStatusExt;
    let classification = classifier.finish(status.code(), SystemTime::now());
    Ok(Finished {
        exit_code: status.code(),
        signal: status.signal(),
        classification,
        started,
        ended,
        interrupted_by: signals.received(),
    })
}

/// Lines of a file, for reading an API key from a secret file (first non-empty line).
pub fn first_line_of(path: &std::path::Path) -> std::io::Result<String> {
    let f = std::fs::File::open(path)?;
    for line in BufReader::new(f).lines() {
        let line = line?;
        if !line.trim().is_empty() {
            return Ok(line.trim().to_string());
        }
    }
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "the file is empty",
    ))
}
