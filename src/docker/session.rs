//! Running a container with the user's terminal attached for real: raw mode, the
//! window size (kept in step on SIGWINCH), keystrokes (Ctrl-C included) passed to the
//! container's TTY, its output to ours. Used for the CLIs' interactive logins.
//! [`run_relayed`] does the same for a caller that is not a terminal (the dashboard).

use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd};

use bollard::query_parameters::{
    AttachContainerOptionsBuilder, ResizeContainerTTYOptionsBuilder, WaitContainerOptionsBuilder,
};
use futures_util::StreamExt;
use nix::sys::termios::{self, SetArg, Termios};
use tokio::io::AsyncWriteExt;

use super::Engine;
use crate::error::{Error, Result};

nix::ioctl_read_bad!(tiocgwinsz, nix::libc::TIOCGWINSZ, nix::libc::winsize);

/// Whether stdin and stdout are both terminals.
pub fn is_interactive() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal() && std::io::stdout().is_terminal()
}

/// Puts the terminal on stdin into raw mode until dropped.
struct RawMode {
    saved: Termios,
}

impl RawMode {
    fn enable() -> Result<RawMode> {
        let stdin = std::io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd()).map_err(|e| Error::io("reading the terminal mode", e.into()))?;
        let mut raw = saved.clone();
        termios::cfmakeraw(&mut raw);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSANOW, &raw)
            .map_err(|e| Error::io("setting the terminal to raw mode", e.into()))?;
        Ok(RawMode { saved })
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(std::io::stdin().as_fd(), SetArg::TCSANOW, &self.saved);
    }
}

fn window_size() -> Option<(u16, u16)> {
    let mut ws = nix::libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // Safety: TIOCGWINSZ fills the struct we pass; stdout is a valid descriptor.
    let ok = unsafe { tiocgwinsz(std::io::stdout().as_raw_fd(), &mut ws) }.is_ok();
    (ok && ws.ws_row > 0 && ws.ws_col > 0).then_some((ws.ws_row, ws.ws_col))
}

async fn resize(engine: &Engine, id: &str) {
    if let Some((rows, cols)) = window_size() {
        let options = ResizeContainerTTYOptionsBuilder::default()
            .h(i32::from(rows))
            .w(i32::from(cols))
            .build();
        if let Err(e) = engine
            .call(
                "resize the container terminal",
                engine.client().resize_container_tty(id, options),
            )
            .await
        {
            tracing::debug!("resize failed: {e}");
        }
    }
}

/// Attaches to a created login container's terminal (stdin, stdout, stderr), then
/// starts it: attaching first, so nothing it prints at start is lost.
async fn attach_and_start(
    engine: &Engine,
    id: &str,
) -> Result<(
    std::pin::Pin<
        Box<
            dyn futures_util::Stream<Item = std::result::Result<bollard::container::LogOutput, bollard::errors::Error>>
                + Send,
        >,
    >,
    std::pin::Pin<Box<dyn tokio::io::AsyncWrite + Send>>,
)> {
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let attached = engine
        .call(
            "attach to the login container",
            engine.client().attach_container(id, Some(options)),
        )
        .await?;
    engine
        .call("start the login container", engine.client().start_container(id, None))
        .await?;
    Ok((attached.output, attached.input))
}

/// Starts a created container (made with a TTY and open stdin), attaches this
/// terminal to it until it exits, and returns its exit status.
pub async fn run_attached(engine: &Engine, id: &str) -> Result<i64> {
    let (mut output, mut input) = attach_and_start(engine, id).await?;

    let raw = RawMode::enable()?;
    resize(engine, id).await;

    // Reading stdin blocks; a thread hands keystrokes to the async side.
    let (tx, mut keys) = tokio::sync::mpsc::channel::<Vec<u8>>(64);
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin();
        let mut buf = [0u8; 1024];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => {
                    if tx.blocking_send(buf[..n].to_vec()).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let mut winch = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::window_change())
        .map_err(|e| Error::io("watching the window size", e))?;
    let mut stdout = std::io::stdout();
    let mut keys_open = true;
    loop {
        tokio::select! {
            item = output.next() => match item {
                Some(Ok(chunk)) => {
                    let _ = stdout.write_all(chunk.as_ref());
                    let _ = stdout.flush();
                }
                Some(Err(e)) => {
                    tracing::debug!("attach stream ended: {e}");
                    break;
                }
                None => break,
            },
            key = keys.recv(), if keys_open => match key {
                Some(bytes) => {
                    if input.write_all(&bytes).await.is_err() {
                        keys_open = false;
                    }
                    let _ = input.flush().await;
                }
                None => keys_open = false,
            },
            _ = winch.recv() => resize(engine, id).await,
        }
    }
    drop(raw);
    wait_exit(engine, id).await
}

/// Waits for a container to stop and returns its exit status.
pub async fn wait_exit(engine: &Engine, id: &str) -> Result<i64> {
    let options = WaitContainerOptionsBuilder::default().condition("not-running").build();
    let mut stream = engine.client().wait_container(id, Some(options));
    match stream.next().await {
        Some(Ok(r)) => Ok(r.status_code),
        Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => Ok(code),
        Some(Err(e)) => Err(engine.error("wait for the container".into(), &e)),
        None => Err(Error::Docker {
            action: "wait for the container".into(),
            reason: "the engine closed the wait stream".into(),
            hint: None,
        }),
    }
}

/// Starts a created container (made with a TTY and open stdin) and relays it instead of
/// a terminal: what it prints goes to `output` as it comes, lines from `input` are typed
/// into it (each followed by Enter). Returns its exit status. The dashboard's re-auth
/// drives the CLI's own login this way.
pub async fn run_relayed(
    engine: &Engine,
    id: &str,
    output: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
    mut input: tokio::sync::mpsc::Receiver<String>,
) -> Result<i64> {
    let (mut stream, mut stdin) = attach_and_start(engine, id).await?;
    let mut input_open = true;
    loop {
        tokio::select! {
            item = stream.next() => match item {
                Some(Ok(chunk)) => {
                    // The receiver gone only means nobody watches any more; keep the login going.
                    let _ = output.send(chunk.as_ref().to_vec());
                }
                Some(Err(e)) => {
                    tracing::debug!("attach stream ended: {e}");
                    break;
                }
                None => break,
            },
            line = input.recv(), if input_open => match line {
                Some(line) => {
                    // A terminal's Enter is CR; the CLIs read a line either way.
                    let typed = format!("{line}\r");
                    if stdin.write_all(typed.as_bytes()).await.is_err() {
                        input_open = false;
                    }
                    let _ = stdin.flush().await;
                }
                None => input_open = false,
            },
        }
    }
    wait_exit(engine, id).await
}
