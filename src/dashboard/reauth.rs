//! Re-auth from the page: the same login as `moonauth login RUNTIME --account ALIAS`
//! (the CLI's own login in a container of the worker image, checked, then put in place
//! by [`crate::docker::login`]), with its terminal relayed: what the CLI prints is read
//! for the sign-in URL, a device code and a prompt for a pasted code; a code the page
//! sends is typed into the CLI. The old login stays in place until the new one is
//! verified. One login at a time per account; the states are kept in memory only.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use serde::Serialize;
use tokio::sync::mpsc;

use crate::agents::Runtime;
use crate::config::Config;
use crate::docker::login::{self, Console, Target};
use crate::docker::{volumes, Engine};
use crate::error::{Error, Result};
use crate::state::Store;

/// Where a re-auth is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Phase {
    /// None has run since the dashboard started.
    Idle,
    InProgress,
    Success,
    Error,
}

/// What the page shows about an account's re-auth (`GET /api/accounts/{alias}/reauth`).
#[derive(Debug, Clone, Serialize)]
pub struct ReauthReport {
    pub schema: &'static str,
    pub alias: String,
    pub state: Phase,
    /// The sign-in page the CLI asks the operator to open (Claude's authorize URL,
    /// Codex's device page), once it printed one.
    pub url: Option<String>,
    /// Codex's one-time device code, once printed.
    pub device_code: Option<String>,
    /// The CLI waits for a code pasted back (Claude's "Paste code here").
    pub awaiting_code: bool,
    /// What happened, in words: the error of a failed login, the volume of a good one.
    pub message: Option<String>,
    #[serde(with = "crate::time::serde_rfc3339_opt")]
    pub started_at: Option<SystemTime>,
    #[serde(with = "crate::time::serde_rfc3339_opt")]
    pub finished_at: Option<SystemTime>,
}

impl ReauthReport {
    fn idle(alias: &str) -> ReauthReport {
        ReauthReport {
            schema: "moonauth.dashboard-reauth.v1",
            alias: alias.to_string(),
            state: Phase::Idle,
            url: None,
            device_code: None,
            awaiting_code: false,
            message: None,
            started_at: None,
            finished_at: None,
        }
    }
}

struct Job {
    report: ReauthReport,
    /// Lines typed into the CLI; `None` once the login ended.
    input: Option<mpsc::Sender<String>>,
    /// What the CLI printed so far (bounded), ANSI escapes removed.
    screen: String,
}

/// The re-auths of this dashboard, by alias.
#[derive(Clone, Default)]
pub struct Reauths {
    jobs: Arc<Mutex<HashMap<String, Job>>>,
}

/// Why a re-auth request cannot be done now.
#[derive(Debug)]
pub enum Refused {
    /// One is already running for the account.
    Running,
    /// No login is waiting for a code.
    NotWaiting,
}

/// The most of the CLI's output kept to read the URL and code from.
const MAX_SCREEN: usize = 64 * 1024;

impl Reauths {
    /// The account's re-auth as it stands.
    pub fn report(&self, alias: &str) -> ReauthReport {
        let jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        jobs.get(alias)
            .map(|j| j.report.clone())
            .unwrap_or_else(|| ReauthReport::idle(alias))
    }

    /// Starts the login of `alias` (a `runtime` OAuth account) on the current tokio
    /// runtime; refused while one runs for it.
    pub fn start(
        &self,
        alias: &str,
        runtime: Runtime,
        config: Arc<Config>,
        store: Store,
        now: SystemTime,
    ) -> std::result::Result<ReauthReport, Refused> {
        let (input_tx, input_rx) = mpsc::channel::<String>(4);
        let (output_tx, mut output_rx) = mpsc::unbounded_channel::<Vec<u8>>();
        let report = {
            let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
            if jobs.get(alias).is_some_and(|j| j.report.state == Phase::InProgress) {
                return Err(Refused::Running);
            }
            let mut report = ReauthReport::idle(alias);
            report.state = Phase::InProgress;
            report.started_at = Some(now);
            jobs.insert(
                alias.to_string(),
                Job {
                    report: report.clone(),
                    input: Some(input_tx),
                    screen: String::new(),
                },
            );
            report
        };
        // Reads what the CLI prints as it comes.
        let reader = {
            let this = self.clone();
            let alias = alias.to_string();
            tokio::spawn(async move {
                while let Some(chunk) = output_rx.recv().await {
                    this.seen(&alias, &chunk);
                }
            })
        };
        let this = self.clone();
        let alias = alias.to_string();
        tokio::spawn(async move {
            let result = relogin(&alias, runtime, &config, store, input_rx, output_tx).await;
            // Everything printed is read before the state says the login ended.
            let _ = reader.await;
            this.finish(&alias, result);
        });
        Ok(report)
    }

    /// Types `code` into the account's running login, when it waits for one.
    pub fn send_code(&self, alias: &str, code: String) -> std::result::Result<ReauthReport, Refused> {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let job = jobs.get_mut(alias).ok_or(Refused::NotWaiting)?;
        let input = job.input.as_ref().ok_or(Refused::NotWaiting)?;
        if job.report.state != Phase::InProgress || input.try_send(code).is_err() {
            return Err(Refused::NotWaiting);
        }
        job.report.awaiting_code = false;
        Ok(job.report.clone())
    }

    fn seen(&self, alias: &str, chunk: &[u8]) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(job) = jobs.get_mut(alias) else { return };
        job.screen.push_str(&strip_ansi(&String::from_utf8_lossy(chunk)));
        if job.screen.len() > MAX_SCREEN {
            let cut = job.screen.len() - MAX_SCREEN;
            let cut = (cut..job.screen.len())
                .find(|i| job.screen.is_char_boundary(*i))
                .unwrap_or(0);
            job.screen.drain(..cut);
        }
        let read = read_screen(&job.screen);
        job.report.url = read.url.or(job.report.url.take());
        job.report.device_code = read.device_code.or(job.report.device_code.take());
        job.report.awaiting_code = read.awaiting_code;
    }

    fn finish(&self, alias: &str, result: Result<String>) {
        let mut jobs = self.jobs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(job) = jobs.get_mut(alias) else { return };
        job.input = None;
        job.report.awaiting_code = false;
        job.report.finished_at = Some(SystemTime::now());
        match result {
            Ok(message) => {
                job.report.state = Phase::Success;
                job.report.message = Some(message);
            }
            Err(e) => {
                job.report.state = Phase::Error;
                job.report.message = Some(crate::redact::scrub(&e.to_string()));
            }
        }
        tracing::info!(alias, state = ?job.report.state, "re-auth ended");
    }
}

/// The login itself, as `moonauth login RUNTIME --account ALIAS` runs it; a good one
/// clears the account's re-login mark.
async fn relogin(
    alias: &str,
    runtime: Runtime,
    config: &Config,
    store: Store,
    input: mpsc::Receiver<String>,
    output: mpsc::UnboundedSender<Vec<u8>>,
) -> Result<String> {
    let spec = volumes::spec(config, runtime, Some(alias))?;
    let target = Target::new(config, &spec, None)?;
    let command = config
        .docker
        .login_command
        .as_ref()
        .map(|c| c.value.clone())
        .unwrap_or_else(|| login::default_login_command(runtime));
    let engine = Engine::connect(&config.docker).await?;
    let outcome = login::interactive(&engine, &target, command, Console::Relay { output, input }).await?;
    let alias_owned = alias.to_string();
    tokio::task::spawn_blocking(move || {
        store.update(crate::state::DEFAULT_LOCK_TIMEOUT, |state| {
            state.account(&alias_owned).is_some() && state.record_login(&alias_owned).is_ok()
        })
    })
    .await
    .map_err(|e| Error::io("record the new login", std::io::Error::other(e.to_string())))??;
    Ok(format!("logged in; the login is in volume {}", outcome.volume))
}

/// What the CLI's screen says so far.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Screen {
    pub url: Option<String>,
    pub device_code: Option<String>,
    pub awaiting_code: bool,
}

/// Reads the sign-in URL (the last `https://` link printed), a device code (a word of
/// capitals and digits in dash-joined groups, after the CLI mentions a code), and
/// whether the CLI's last words ask for a pasted code.
pub fn read_screen(screen: &str) -> Screen {
    let url = screen
        .split_whitespace()
        .rfind(|w| w.starts_with("https://"))
        .map(str::to_string);
    let device_code = screen
        .find("code")
        .map(|at| &screen[at..])
        .and_then(|rest| rest.split_whitespace().find(|w| is_device_code(w)))
        .map(str::to_string);
    let tail = screen.trim_end();
    let last_line = tail.rsplit(['\n', '\r']).next().unwrap_or("");
    let awaiting_code = last_line.to_ascii_lowercase().contains("paste code");
    Screen {
        url,
        device_code,
        awaiting_code,
    }
}

fn is_device_code(word: &str) -> bool {
    let groups: Vec<&str> = word.split('-').collect();
    groups.len() >= 2
        && groups
            .iter()
            .all(|g| (3..=8).contains(&g.len()) && g.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit()))
}

/// Removes terminal escape sequences (CSI and OSC) from what a CLI printed on its TTY.
pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\u{1b}' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('[') => {
                // CSI: parameters then one final byte in @..~.
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
            Some(']') => {
                // OSC: up to BEL or ESC \.
                while let Some(c) = chars.next() {
                    if c == '\u{7}' || (c == '\u{1b}' && chars.peek() == Some(&'\\')) {
                        if c == '\u{1b}' {
                            chars.next();
                        }
                        break;
                    }
                }
            }
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_claudes_sign_in_url_and_its_prompt_for_a_code() {
        let screen = "standin: claude auth login\r\nBrowser didn't open? Use the url below to sign in:\r\n\
            https://claude.ai/oauth/authorize?code=true&client_id=standin&state=standin\r\nPaste code here if prompted > ";
        let read = read_screen(screen);
        assert_eq!(
            read.url.as_deref(),
            Some("https://claude.ai/oauth/authorize?code=true&client_id=standin&state=standin")
        );
        assert_eq!(read.device_code, None);
        assert!(read.awaiting_code);
    }

    #[test]
    fn reads_codexs_device_page_and_code() {
        let screen = "1. Open this link in your browser and sign in to your account\r\n   \
            \u{1b}[94mhttps://auth.openai.com/codex/device\u{1b}[0m\r\n2. Enter this one-time code (expires in 15 minutes)\r\n   \
            \u{1b}[94mSTND-1234\u{1b}[0m\r\nWaiting for sign-in";
        let read = read_screen(&strip_ansi(screen));
        assert_eq!(read.url.as_deref(), Some("https://auth.openai.com/codex/device"));
        assert_eq!(read.device_code.as_deref(), Some("STND-1234"));
        assert!(!read.awaiting_code);
    }

    #[test]
    fn strips_csi_and_osc_sequences() {
        assert_eq!(
            strip_ansi("\u{1b}[1;32mok\u{1b}[0m \u{1b}]8;;x\u{7}link\u{1b}]8;;\u{1b}\\"),
            "ok link"
        );
    }
}
