//! Handing unfinished work from one job to the next (GitHub Actions' two-job pattern: a
//! subscription job, then a fallback job that picks up its work). `run --save-state DIR`
//! writes what resuming needs — the session's transcript (Claude) or rollout (Codex) with
//! every known credential value masked, its id, the attempts so far and why each ended —
//! and `run --resume-from DIR` continues that session on the next credential. The
//! attempts travel along, so a credential an earlier job tried is not tried again and
//! jobs never loop. Nothing secret is written: no token, no key, no login file.

use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::classify::{Classification, Outcome};
use super::report::{Attempt, RunReport, Unavailable};
use super::{resume, Failover};
use crate::agents::Runtime;
use crate::error::{Error, Result};
use crate::redact::Redactor;
use crate::rotation::Plan;

/// The bundle's description file.
pub const STATE_FILE: &str = "moonauth-state.json";
/// The bundle's directory holding the session, laid out as in a login directory.
pub const SESSION_DIR: &str = "session";
/// The schema of [`STATE_FILE`].
pub const SCHEMA: &str = "moonauth.run-state.v1";
/// The largest state file read.
const MAX_STATE_BYTES: u64 = 4 * 1024 * 1024;
/// The largest session file carried (a transcript of a long session is megabytes).
const MAX_SESSION_BYTES: u64 = 256 * 1024 * 1024;

/// What one job leaves for the next.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SavedRun {
    pub schema: String,
    /// `claude` or `codex`.
    pub runtime: String,
    /// The session to continue (Claude's `session_id`, Codex's `thread_id`).
    pub session_id: Option<String>,
    /// The session file inside `session/`, relative (e.g. `projects/<cwd-slug>/<id>.jsonl`).
    pub session_file: Option<PathBuf>,
    /// The working directory of the job that saved it: Claude finds a session by it.
    pub cwd: Option<PathBuf>,
    /// Every attempt so far, of every job.
    pub attempts: Vec<Attempt>,
    /// The credentials that were out, and why.
    pub unavailable: Vec<Unavailable>,
    pub finished_by: Option<String>,
    pub exhausted: bool,
}

/// Writes the bundle for `report` into `dir` (created 0700 when missing): the state file
/// and the session found in `last_dir`, each known credential value in it masked.
pub fn save(dir: &Path, report: &RunReport, last_dir: Option<&Path>, redactor: &Redactor) -> Result<()> {
    let io = |what: String| move |e| Error::io(what, e);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io(format!("create the state directory {}", dir.display())))?;
    let session_id = report.attempts.iter().rev().find_map(|a| a.session_id.clone());
    let mut session_file = None;
    if let (Some(id), Some(from)) = (&session_id, last_dir) {
        if let Some(src) = resume::find_session(report.runtime, from, id) {
            let rel = src.strip_prefix(from).expect("found under the directory").to_path_buf();
            let bytes = crate::fsx::read_file(&src, MAX_SESSION_BYTES)
                .map_err(|e| {
                    Error::io(
                        format!("read the session {}", src.display()),
                        std::io::Error::other(e.to_string()),
                    )
                })?
                .unwrap_or_default();
            let text = redactor.mask_known(&String::from_utf8_lossy(&bytes));
            let dst = dir.join(SESSION_DIR).join(&rel);
            if let Some(parent) = dst.parent() {
                std::fs::DirBuilder::new()
                    .recursive(true)
                    .mode(0o700)
                    .create(parent)
                    .map_err(io(format!("create {}", parent.display())))?;
            }
            write_private(&dst, text.as_bytes())?;
            session_file = Some(rel);
        }
    }
    let saved = SavedRun {
        schema: SCHEMA.into(),
        runtime: report.runtime.to_string(),
        session_id,
        session_file,
        cwd: std::env::current_dir().ok(),
        attempts: report.attempts.clone(),
        unavailable: report.unavailable.clone(),
        finished_by: report.finished_by.clone(),
        exhausted: report.exhausted,
    };
    let json = serde_json::to_string_pretty(&saved).expect("the state serializes");
    // Known values only: a shape rule would blank the session id too.
    write_private(&dir.join(STATE_FILE), redactor.mask_known(&json).as_bytes())
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    crate::credentials::apply::write_atomic(
        path,
        bytes,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        0o600,
    )
}

/// Reads the bundle in `dir`.
pub fn load(dir: &Path) -> Result<SavedRun> {
    let bad = |reason: String| Error::InvalidFlag {
        flag: "--resume-from",
        value: dir.display().to_string(),
        reason,
    };
    let path = dir.join(STATE_FILE);
    let bytes = crate::fsx::read_file(&path, MAX_STATE_BYTES)
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| {
            bad(format!(
                "no {STATE_FILE} in it (was it written by `moonauth run --save-state`?)"
            ))
        })?;
    let saved: SavedRun =
        serde_json::from_slice(&bytes).map_err(|e| bad(format!("{STATE_FILE} is not a saved run: {e}")))?;
    if saved.schema != SCHEMA {
        return Err(bad(format!("{STATE_FILE} has schema {}, not {SCHEMA}", saved.schema)));
    }
    Ok(saved)
}

impl Failover<'_> {
    /// Takes over the work saved in `dir`: its attempts (carried, not tried again), and
    /// its session copied into this run's directory, to be resumed by the first attempt.
    pub(super) fn take_over(&mut self, dir: &Path, plan: &mut Plan) -> Result<()> {
        let saved = load(dir)?;
        let runtime = self.request.runtime;
        let bad = |reason: String| Error::InvalidFlag {
            flag: "--resume-from",
            value: dir.display().to_string(),
            reason,
        };
        if saved.runtime != runtime.as_str() {
            return Err(bad(format!("it holds a {} run, not {runtime}", saved.runtime)));
        }
        if let Some(by) = &saved.finished_by {
            return Err(bad(format!(
                "that run already finished on {by}; there is nothing to resume"
            )));
        }
        for a in &saved.attempts {
            plan.already_tried(&a.account, a.kind, &a.outcome);
            self.report.attempts.push(Attempt {
                carried: true,
                ..a.clone()
            });
        }
        self.unavailable.extend(saved.unavailable.iter().cloned());
        if let (Some(cwd), Ok(here)) = (&saved.cwd, std::env::current_dir()) {
            if runtime == Runtime::Claude && *cwd != here {
                tracing::warn!(
                    "the saved session was made in {}, this run is in {}: Claude Code finds a session by its working directory",
                    cwd.display(),
                    here.display()
                );
            }
        }
        let Some(id) = saved.session_id.clone() else {
            return Ok(());
        };
        let scratch = self.scratch_dir()?;
        if resume::carry_session(runtime, &dir.join(SESSION_DIR), &scratch, &id)?.is_none() {
            tracing::warn!("the saved run names session {id} but carries no session file; starting afresh");
            return Ok(());
        }
        self.previous = Some((
            scratch,
            Classification {
                outcome: Outcome::Other {
                    detail: "saved by an earlier job".into(),
                },
                session_id: Some(id),
                session_started: true,
                api_error_status: None,
                usage: None,
            },
        ));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::accounts::AccountKind;

    fn attempt(account: &str, outcome: &str, session: Option<&str>) -> Attempt {
        Attempt {
            account: account.into(),
            kind: AccountKind::Oauth,
            outcome: outcome.into(),
            reason: Some("usage limit (five_hour)".into()),
            resets_at: None,
            session_id: session.map(str::to_string),
            resumed: false,
            exit_code: Some(1),
            started_at: "2026-11-24T12:00:00Z".into(),
            duration_ms: 10,
            switch_ms: None,
            renewal: None,
            carried: false,
        }
    }

    #[test]
    fn the_bundle_carries_the_session_with_known_values_masked_and_loads_back() {
        let login = tempfile::tempdir().unwrap();
        let bundle = tempfile::tempdir().unwrap();
        let id = "0b4a6c1e-5f7d-4e0a-9a55-2b1d3c4e5f60";
        let transcript = login.path().join(format!("projects/-work-repo/{id}.jsonl"));
        std::fs::create_dir_all(transcript.parent().unwrap()).unwrap();
        let token = "CANARY-handoff-token-0123456789";
        std::fs::write(&transcript, format!("{{\"type\":\"user\",\"text\":\"use {token}\"}}\n")).unwrap();
        let mut report = RunReport::new(Runtime::Claude);
        report
            .attempts
            .push(attempt("env:CLAUDE_CODE_OAUTH_TOKEN", "usage-limit", Some(id)));
        report.exhausted = true;
        let mut redactor = Redactor::new();
        redactor.add(token);
        let dir = bundle.path().join("state");
        save(&dir, &report, Some(login.path()), &redactor).unwrap();

        let saved = load(&dir).unwrap();
        assert_eq!(saved.session_id.as_deref(), Some(id), "the id survives the masking");
        assert_eq!(
            saved.session_file.as_deref(),
            Some(Path::new(&format!("projects/-work-repo/{id}.jsonl")))
        );
        assert_eq!(saved.attempts.len(), 1);
        let copied = std::fs::read_to_string(dir.join(SESSION_DIR).join(saved.session_file.unwrap())).unwrap();
        assert!(
            copied.contains("\"type\":\"user\"") && !copied.contains(token),
            "{copied}"
        );
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
    }

    #[test]
    fn a_directory_without_a_saved_run_or_of_another_schema_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("--resume-from") && err.contains(STATE_FILE), "{err}");
        std::fs::write(
            dir.path().join(STATE_FILE),
            r#"{"schema":"moonauth.run-state.v9","runtime":"claude","session_id":null,"session_file":null,"cwd":null,"attempts":[],"unavailable":[],"finished_by":null,"exhausted":true}"#,
        )
        .unwrap();
        let err = load(dir.path()).unwrap_err().to_string();
        assert!(err.contains("moonauth.run-state.v9"), "{err}");
    }
}
