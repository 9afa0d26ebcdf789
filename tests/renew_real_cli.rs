//! The shared-login failure and its fix, with the real `codex` and `claude` (the pinned
//! versions in tools/clis) against the loopback token service and model APIs of
//! tests/support/renew.rs. Network only on 127.0.0.1: every other address goes to a dead
//! proxy; stdin is closed and every run has a hard timeout.
//!
//! The CLIs are found in $MOONAUTH_CLI_BIN_DIR, else <repo>/tools/clis/node_modules/.bin;
//! when absent these tests print a skip notice, unless MOONAUTH_REQUIRE_REAL_CLIS=1.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use crate::support::moonauth_bin;
use crate::support::renew::*;

pub const CLI_TIMEOUT: Duration = Duration::from_secs(120);
const WORKERS: usize = 8;

fn ago(s: u64) -> SystemTime {
    SystemTime::now() - Duration::from_secs(s)
}

/// Environment shared by every real CLI run (`support::cli::offline`), in `home`.
pub fn sandboxed(program: &Path, home: &Path) -> Command {
    crate::support::cli::offline(program, home, home)
}

/// The arguments of `codex exec` against the fake Responses API with the ChatGPT login.
pub fn codex_exec_args(svc: &TokenService) -> Vec<String> {
    let provider = format!(
        r#"model_providers.fake={{name="fake",base_url="{}/v1",wire_api="responses",requires_openai_auth=true,request_max_retries=0,stream_max_retries=0}}"#,
        svc.base_url()
    );
    [
        "exec",
        "--skip-git-repo-check",
        "--json",
        "-c",
        "cli_auth_credentials_store=file",
        "-c",
        &provider,
        "-c",
        "model_provider=fake",
        "say hi",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn codex_command(codex: &Path, home: &Path, codex_home: &Path, svc: &TokenService) -> Command {
    let mut c = sandboxed(codex, home);
    c.env("CODEX_HOME", codex_home)
        .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", svc.token_url())
        .args(codex_exec_args(svc));
    c
}

/// Runs the commands at the same moment, each in its own thread; returns their outputs.
pub fn all_at_once(commands: Vec<Command>) -> Vec<Output> {
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(commands.len()));
    let handles: Vec<_> = commands
        .into_iter()
        .map(|mut c| {
            let b = std::sync::Arc::clone(&barrier);
            std::thread::spawn(move || {
                b.wait();
                run(&mut c, CLI_TIMEOUT)
            })
        })
        .collect();
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

pub fn finished(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| o.code == Some(0) && o.stdout.contains("turn.completed"))
        .count()
}

/// One expired Codex login shared by 8 workers (as 8 containers share a volume).
struct SharedCodexLogin {
    svc: TokenService,
    root: tempfile::TempDir,
    codex_home: PathBuf,
    grant: usize,
}

fn shared_codex_login() -> SharedCodexLogin {
    let svc = TokenService::start(Flavor::Codex);
    // A refresh takes as long as a real one over the internet, so the workers race.
    svc.set_delay(Duration::from_millis(300));
    let root = temp_root("renew-real-");
    let codex_home = subdir(root.path(), "codex-home");
    let issued = svc.login(ago(600));
    write_codex_login(&codex_home, &issued, ago(30 * 86_400));
    SharedCodexLogin {
        grant: issued.grant,
        svc,
        root,
        codex_home,
    }
}

pub fn describe(outs: &[Output]) -> String {
    outs.iter()
        .enumerate()
        .map(|(i, o)| {
            let last = o.text().lines().rev().take(3).collect::<Vec<_>>().join(" | ");
            format!("worker {i}: exit {:?}: {last}", o.code)
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn real_cli_codex_eight_workers_on_one_expired_login_revoke_it_without_moonauth() {
    let Some(codex) = real_cli("codex") else { return };
    let s = shared_codex_login();
    let home = subdir(s.root.path(), "home");
    let commands = (0..WORKERS)
        .map(|_| codex_command(&codex, &home, &s.codex_home, &s.svc))
        .collect();
    let outs = all_at_once(commands);
    let done = finished(&outs);
    eprintln!(
        "without moonauth: {done} of {WORKERS} finished; {} refreshes, {} reuses, grant revoked: {}",
        s.svc.refreshes(),
        s.svc.reuses(),
        s.svc.revoked(s.grant)
    );
    assert!(
        s.svc.reuses() >= 1,
        "the workers reused a rotated refresh token:\n{}",
        describe(&outs)
    );
    assert!(s.svc.revoked(s.grant), "and the grant was revoked");
    assert!(
        done < WORKERS,
        "not every worker can finish on a revoked grant:\n{}",
        describe(&outs)
    );
    assert!(
        outs.iter().any(|o| o.text().contains("could not be refreshed")
            || o.text().contains("401")
            || o.text().contains("invalidated")),
        "{}",
        describe(&outs)
    );
}

#[test]
fn real_cli_codex_eight_workers_after_moonauth_renew_all_finish() {
    let Some(codex) = real_cli("codex") else { return };
    let s = shared_codex_login();
    let home = subdir(s.root.path(), "home");
    let url = s.svc.token_url();
    let out = run(
        moonauth_cmd(&[("CODEX_REFRESH_TOKEN_URL_OVERRIDE", url.as_str())]).args([
            "renew",
            "codex",
            "--dir",
            s.codex_home.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(out.code, Some(0), "{}", out.text());
    assert_no_tokens(&out.text(), &s.svc);
    let commands = (0..WORKERS)
        .map(|_| codex_command(&codex, &home, &s.codex_home, &s.svc))
        .collect();
    let outs = all_at_once(commands);
    let done = finished(&outs);
    eprintln!(
        "renew then 8 codex: {done} of {WORKERS} finished; {} refreshes, {} reuses",
        s.svc.refreshes(),
        s.svc.reuses()
    );
    assert_eq!(done, WORKERS, "{}", describe(&outs));
    assert_eq!(s.svc.refreshes(), 1);
    assert_eq!(s.svc.reuses(), 0);
    assert!(!s.svc.revoked(s.grant));
    assert_eq!(s.svc.model_ok(), WORKERS);
}

#[test]
fn real_cli_codex_eight_renew_then_exec_pipelines_at_once_all_finish() {
    let Some(codex) = real_cli("codex") else { return };
    let s = shared_codex_login();
    let home = subdir(s.root.path(), "home");
    // What `moonauth run codex -- exec …` will do in each container: renew, then exec.
    let script = r#"moonauth_bin="$1"; codex_bin="$2"; dir="$3"; shift 3
"$moonauth_bin" renew codex --dir "$dir" >/dev/null && exec "$codex_bin" "$@""#;
    let commands = (0..WORKERS)
        .map(|_| {
            let mut c = sandboxed(Path::new("/bin/sh"), &home);
            c.env("CODEX_HOME", &s.codex_home)
                .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", s.svc.token_url())
                .args(["-c", script, "sh"])
                .arg(moonauth_bin())
                .args([codex.to_str().unwrap(), s.codex_home.to_str().unwrap()])
                .args(codex_exec_args(&s.svc));
            c
        })
        .collect();
    let outs = all_at_once(commands);
    let done = finished(&outs);
    eprintln!(
        "8 x (renew && codex exec) at once: {done} of {WORKERS} finished; {} refreshes, {} reuses",
        s.svc.refreshes(),
        s.svc.reuses()
    );
    for o in &outs {
        assert_no_tokens(&o.stderr, &s.svc);
    }
    assert_eq!(done, WORKERS, "{}", describe(&outs));
    assert_eq!(s.svc.refreshes(), 1, "exactly one refresh");
    assert_eq!(s.svc.reuses(), 0, "no reuse");
    assert!(!s.svc.revoked(s.grant));
}

#[test]
fn real_cli_codex_eight_workers_through_moonauth_run_all_finish() {
    let Some(codex) = real_cli("codex") else { return };
    let s = shared_codex_login();
    let home = subdir(s.root.path(), "home");
    let path = format!(
        "{}:{}",
        codex.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let commands = (0..WORKERS)
        .map(|_| {
            let mut c = sandboxed(moonauth_bin(), &home);
            c.env("PATH", &path)
                .env("CODEX_HOME", &s.codex_home)
                .env("CODEX_REFRESH_TOKEN_URL_OVERRIDE", s.svc.token_url())
                .args(["run", "codex", "--"])
                .args(codex_exec_args(&s.svc));
            c
        })
        .collect();
    let outs = all_at_once(commands);
    let done = finished(&outs);
    eprintln!(
        "8 x moonauth run codex at once: {done} of {WORKERS} finished; {} refreshes, {} reuses",
        s.svc.refreshes(),
        s.svc.reuses()
    );
    for o in &outs {
        assert_no_tokens(&o.stderr, &s.svc);
        assert_no_tokens(&o.stdout, &s.svc);
    }
    assert_eq!(done, WORKERS, "{}", describe(&outs));
    assert_eq!(s.svc.refreshes(), 1, "exactly one refresh");
    assert_eq!(s.svc.reuses(), 0, "no reuse");
    assert!(!s.svc.revoked(s.grant));
    // The report of each run says moonauth's refresh ran first (once, or elsewhere).
    let renewals: Vec<String> = outs
        .iter()
        .filter_map(|o| {
            o.stderr
                .lines()
                .rev()
                .find(|l| l.starts_with("{\"schema\":\"moonauth.run.v1\""))
        })
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["attempts"][0]["renewal"].to_string())
        .collect();
    assert_eq!(renewals.len(), WORKERS, "every run reported");
    assert_eq!(
        renewals.iter().filter(|r| r.contains("\"refreshed\"")).count(),
        1,
        "{renewals:?}"
    );
}

fn claude_command(claude: &Path, home: &Path, config: &Path, svc: &TokenService) -> Command {
    let mut c = sandboxed(claude, home);
    c.env("CLAUDE_CONFIG_DIR", config)
        .env("ANTHROPIC_BASE_URL", svc.base_url())
        .env("DISABLE_TELEMETRY", "1")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("CLAUDE_CODE_MAX_RETRIES", "0")
        .args(["-p", "say hi", "--output-format", "json"]);
    c
}

#[test]
fn real_cli_claude_runs_on_the_login_moonauth_renewed() {
    let Some(claude) = real_cli("claude") else { return };
    let svc = TokenService::start(Flavor::Claude);
    let root = temp_root("renew-real-");
    let home = subdir(root.path(), "home");
    let config = subdir(root.path(), "claude");
    let control = subdir(root.path(), "claude-control");
    let issued = svc.login(ago(600));
    write_claude_login(&config, &issued);
    write_claude_login(&control, &issued);

    // Control: on the expired login claude cannot refresh (its token host is not
    // reachable from here) and the fake refuses the expired token.
    let out = run(&mut claude_command(&claude, &home, &control, &svc), CLI_TIMEOUT);
    assert_ne!(
        out.code,
        Some(0),
        "claude cannot work on the expired login: {}",
        out.text()
    );
    assert!(svc.model_refused() >= 1 || out.text().contains("401") || out.text().contains("authenticate"));
    let ok_before = svc.model_ok();

    let url = svc.token_url();
    let renewed = run(
        moonauth_cmd(&[("MOONAUTH_CLAUDE_TOKEN_URL", url.as_str())]).args([
            "renew",
            "claude",
            "--dir",
            config.to_str().unwrap(),
        ]),
        Duration::from_secs(60),
    );
    assert_eq!(renewed.code, Some(0), "{}", renewed.text());
    assert_no_tokens(&renewed.text(), &svc);
    assert!(!svc.accepts(&issued.access_token), "the old token is not accepted");

    let out = run(&mut claude_command(&claude, &home, &config, &svc), CLI_TIMEOUT);
    assert_eq!(out.code, Some(0), "claude works on the renewed login: {}", out.text());
    let v: serde_json::Value = serde_json::from_str(out.stdout.trim()).unwrap_or_default();
    assert_eq!(v["is_error"], false, "{}", out.stdout);
    assert!(svc.model_ok() > ok_before, "the fake accepted the new token");
    assert_eq!(svc.refreshes(), 1, "only moonauth refreshed");
    assert_eq!(svc.reuses(), 0);
    // claude left the renewed login as it was (it had nothing to refresh).
    let creds = read_json(&config.join(".credentials.json"));
    assert!(svc.accepts(creds["claudeAiOauth"]["accessToken"].as_str().unwrap()));
}
