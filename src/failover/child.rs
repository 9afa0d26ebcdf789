//! Running one attempt of a CLI: its output passes through unchanged (byte for byte, as
//! it comes) while each line also feeds the classifier; its exit status comes back.
//! Signals moonauth receives (SIGINT, SIGTERM, SIGHUP, SIGQUIT) go to the child, which
//! starts with none of them blocked.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{SigSet, SigmaskHow, Signal};

use crate::agents::Runtime;
use crate::error::{Error, Result};
use crate::failover::classify::{Classification, OutputClassifier};
use crate::redact::Redactor;
use crate::time::Clock;

/// One child process to run.
pub struct ChildSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Variables set for the child (a login directory, an API key, retry knobs).
    pub set: Vec<(String, String)>,
    /// Variables removed from the child's environment (competing credentials).
    pub remove: Vec<String>,
    /// The credential values of the run: masked in each line before the classifier sees
    /// it, so no detail it keeps (stored, reported) can carry one, even cut short.
    pub redact: Redactor,
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
    /// Held while a signal is noted and the child looked up, and while a new child is
    /// noted and a noted signal looked up: each signal reaches a child exactly once.
    handover: Arc<Mutex<()>>,
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
        let handover = Arc::new(Mutex::new(()));
        let (c, r, h) = (child.clone(), received.clone(), handover.clone());
        std::thread::spawn(move || loop {
            let Ok(sig) = set.wait() else { return };
            let _held = h.lock().unwrap_or_else(PoisonError::into_inner);
            r.store(sig as i32, Ordering::SeqCst);
            let pid = c.load(Ordering::SeqCst);
            if pid > 0 {
                let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
            }
        });
        Ok(SignalForwarder {
            child,
            received,
            handover,
        })
    }

    /// Notes the child signals go to. A signal received before (during a renewal, a
    /// backoff, the spawn) went to no one: the child gets it now, or it would run on
    /// unaware that the run was stopped.
    fn forward_to(&self, pid: u32) {
        let _held = self.handover.lock().unwrap_or_else(PoisonError::into_inner);
        let Ok(pid) = i32::try_from(pid) else { return };
        self.child.store(pid, Ordering::SeqCst);
        if let Some(sig) = self.received().and_then(|s| Signal::try_from(s).ok()) {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig);
        }
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

/// How long moonauth keeps reading the CLI's output after the CLI exited. A process the
/// CLI left behind (`sleep 30 &`) may hold the pipes open for as long as it lives; the
/// attempt ends when the CLI does, with whatever its helpers wrote by then.
pub const DRAIN_AFTER_EXIT: Duration = Duration::from_secs(1);

/// The most of one line the classifier gets, in bytes. Structured lines carrying tool
/// output can run to hundreds of KiB, so the cap sits well above them; what is cut off
/// still passes through to our stdout/stderr, only the classifier does not see it.
pub const LINE_KEEP_BYTES: usize = 1 << 20;

/// What the reading threads and the waiter report to the attempt.
enum Event {
    Out(String),
    Err(String),
    /// The CLI exited (or waiting for it failed), at this instant.
    Exited(std::io::Result<ExitStatus>, Instant),
}

/// Splits a byte stream into lines for the classifier in one pass over each chunk, and
/// keeps at most `keep` bytes of any line (the rest of an overlong line is dropped).
struct LineSplitter {
    line: Vec<u8>,
    keep: usize,
}

impl LineSplitter {
    fn new(keep: usize) -> Self {
        LineSplitter { line: Vec::new(), keep }
    }

    /// Feeds the next bytes; `emit` gets each line they complete, without its line ending.
    fn push(&mut self, mut chunk: &[u8], mut emit: impl FnMut(String)) {
        // Only the new bytes are searched, so a line that never ends costs linear time.
        while let Some(pos) = chunk.iter().position(|&b| b == b'\n') {
            self.keep_bytes(&chunk[..pos]);
            emit(self.take());
            chunk = &chunk[pos + 1..];
        }
        self.keep_bytes(chunk);
    }

    /// The unterminated last line, if the stream ended inside one.
    fn finish(mut self) -> Option<String> {
        (!self.line.is_empty()).then(|| self.take())
    }

    fn keep_bytes(&mut self, bytes: &[u8]) {
        let room = self.keep.saturating_sub(self.line.len());
        self.line.extend_from_slice(&bytes[..bytes.len().min(room)]);
    }

    fn take(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.line).trim_end_matches('\r').to_string();
        self.line.clear();
        text
    }
}

/// Copies `from` to `to` unchanged, flushing each read, and hands each line to `emit`
/// (at most `keep` bytes of it). Write errors are ignored: a closed stdout (`| head`) must
/// not stop the CLI, whose output still feeds the classifier.
fn copy_and_split(mut from: impl Read, mut to: impl Write, keep: usize, mut emit: impl FnMut(String)) {
    let mut buf = [0u8; 8192];
    let mut lines = LineSplitter::new(keep);
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let chunk = &buf[..n];
        // Pass through first: the caller sees output as soon as the CLI prints it.
        let _ = to.write_all(chunk).and_then(|_| to.flush());
        lines.push(chunk, &mut emit);
    }
    if let Some(text) = lines.finish() {
        emit(text);
    }
}

/// Copies a child's stream to ours unchanged and sends each line to the classifier.
fn pump(from: impl Read + Send + 'static, to_stdout: bool, tx: mpsc::Sender<Event>) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        // After the attempt ended the receiver is gone; the output keeps passing through.
        let emit = |text| {
            let _ = tx.send(if to_stdout { Event::Out(text) } else { Event::Err(text) });
        };
        if to_stdout {
            copy_and_split(from, std::io::stdout(), LINE_KEEP_BYTES, emit)
        } else {
            copy_and_split(from, std::io::stderr(), LINE_KEEP_BYTES, emit)
        }
    })
}

/// Runs the child to completion, passing its output through and classifying it (reset
/// times the CLI gives without a date are read against `clock`).
pub fn run(spec: &ChildSpec, runtime: Runtime, signals: &SignalForwarder, clock: &Clock) -> Result<Finished> {
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
    signals.forward_to(child.id());
    let (tx, rx) = mpsc::channel();
    let out = pump(child.stdout.take().expect("stdout was piped"), true, tx.clone());
    let err = pump(child.stderr.take().expect("stderr was piped"), false, tx.clone());
    // The exit is an event of its own, so the end of the attempt does not hang on the
    // pipes: anything the CLI started in the background may hold them open.
    let forwarded_to = signals.child.clone();
    std::thread::spawn(move || {
        let status = child.wait();
        forwarded_to.store(0, Ordering::SeqCst);
        let _ = tx.send(Event::Exited(status, Instant::now()));
    });
    let mut classifier = OutputClassifier::new(runtime);
    let mut exited: Option<(std::io::Result<ExitStatus>, Instant)> = None;
    // Whether the pipes were still open when the drain time ran out.
    let mut left_open = false;
    loop {
        let event = match &exited {
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some((_, at)) => rx.recv_timeout((*at + DRAIN_AFTER_EXIT).saturating_duration_since(Instant::now())),
        };
        match event {
            Ok(Event::Out(l)) => classifier.stdout_line(&spec.redact.mask_known(&l)),
            Ok(Event::Err(l)) => classifier.stderr_line(&spec.redact.mask_known(&l)),
            Ok(Event::Exited(status, at)) => exited = Some((status, at)),
            // Every stream ended and the waiter reported.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                left_open = true;
                break;
            }
        }
    }
    if left_open {
        // The readers stay behind, still passing the leftover process's output through.
        tracing::info!("the CLI exited but left a process holding its output; not waiting for it");
    } else {
        let _ = out.join();
        let _ = err.join();
    }
    let (status, ended) = exited.ok_or_else(|| {
        Error::io(
            "waiting for the CLI",
            std::io::Error::other("the waiting thread ended without a status"),
        )
    })?;
    let status = status.map_err(|e| Error::io("waiting for the CLI", e))?;
    use std::os::unix::process::ExitStatusExt;
    let classification = classifier.finish(status.code(), clock.now());
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `chunks` one read at a time and collects the lines.
    fn split(chunks: &[&[u8]], keep: usize) -> Vec<String> {
        let mut lines = Vec::new();
        let mut splitter = LineSplitter::new(keep);
        for chunk in chunks {
            splitter.push(chunk, |l| lines.push(l));
        }
        lines.extend(splitter.finish());
        lines
    }

    #[test]
    fn lines_split_across_reads_come_out_whole() {
        assert_eq!(
            split(&[b"ab", b"c\nde", b"f\n", b"\n", b"g"], 64),
            ["abc", "def", "", "g"]
        );
    }

    #[test]
    fn crlf_endings_are_dropped_even_when_split_between_reads() {
        assert_eq!(split(&[b"one\r\ntwo\r", b"\nthree"], 64), ["one", "two", "three"]);
    }

    #[test]
    fn an_overlong_line_is_cut_for_the_classifier_only() {
        assert_eq!(split(&[b"0123456789", b"abcdef\nok\n"], 8), ["01234567", "ok"]);

        /// A reader that hands out at most 3 bytes per read, like a slow pipe.
        struct Trickle<'a>(&'a [u8]);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                let n = self.0.len().min(buf.len()).min(3);
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut input = vec![b'x'; 100];
        input.extend_from_slice(b"\r\n{\"type\":\"result\"}\r\ntail");
        let mut output = Vec::new();
        let mut lines = Vec::new();
        copy_and_split(Trickle(&input), &mut output, 24, |l| lines.push(l));
        assert_eq!(output, input, "the output passes through byte for byte");
        assert_eq!(lines, ["x".repeat(24), "{\"type\":\"result\"}".into(), "tail".into()]);
    }

    #[test]
    fn a_long_line_without_a_newline_is_split_in_linear_time() {
        // 64 MiB in 8 KiB reads: the old rescan of the pending buffer took minutes here.
        let chunk = [b'a'; 8192];
        let mut splitter = LineSplitter::new(LINE_KEEP_BYTES);
        for _ in 0..8192 {
            splitter.push(&chunk, |_| panic!("no line ends"));
        }
        assert_eq!(splitter.finish().map(|l| l.len()), Some(LINE_KEEP_BYTES));
    }
}
