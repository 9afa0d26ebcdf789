//! `moonauth ci check` (and preflight's section under `GITHUB_ACTIONS=true`): whether a
//! GitHub Actions step can run Claude the way its workflow expects — the event against
//! the Claude GitHub App's allow-list (a setting), whether an OIDC token can be requested
//! (and with `--oidc`, its claims), and which credentials are present and which the CLI
//! would use. Never prints a credential or the OIDC token.

use std::time::Duration;

use serde::Serialize;
use serde_json::{Map, Value};

use super::{Check, CheckStatus};
use crate::agents::claude;
use crate::config::Config;
use crate::exit::Exit;
use crate::github::{oidc, Context, OIDC_REQUEST_VARS};
use crate::redact::Secret;
use crate::source::Env;

/// How long `--oidc` waits for the token service.
const OIDC_TIMEOUT: Duration = Duration::from_secs(20);

/// The credentials a step has for Claude, by kind (never their values).
#[derive(Debug, Clone, Serialize)]
pub struct CredentialsPresent {
    /// `CLAUDE_CODE_OAUTH_TOKEN` (a `claude setup-token` subscription token).
    pub oauth_token: bool,
    /// `ANTHROPIC_API_KEY` (API billing).
    pub api_key: bool,
    /// Cloud workload identity: `CLAUDE_CODE_USE_BEDROCK` or `CLAUDE_CODE_USE_VERTEX`.
    pub workload_identity: bool,
    /// What the CLI itself would use when run directly: `api-key`, `oauth-token`,
    /// `workload-identity` or `none`.
    pub cli_would_use: &'static str,
    /// What `moonauth run` tries first: the subscription, the key only on a usage limit
    /// with fallback on.
    pub moonauth_run_order: Vec<&'static str>,
}

/// The OIDC part of the report.
#[derive(Debug, Clone, Serialize)]
pub struct OidcReport {
    /// Both request variables are set (`permissions: id-token: write`).
    pub available: bool,
    pub audience: String,
    /// The token's claims, when `--oidc` requested one (never the token).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claims: Option<Map<String, Value>>,
}

/// The report of `moonauth ci check` (schema `moonauth.ci.v1`, docs/github-actions.md).
#[derive(Debug, Clone, Serialize)]
pub struct CiReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub github_actions: bool,
    pub event: Option<String>,
    pub repository: Option<String>,
    pub runner: Runner,
    /// The events the App token exchange accepts (`MOONAUTH_GITHUB_EVENTS`).
    pub app_events: Vec<String>,
    pub oidc: OidcReport,
    pub credentials: CredentialsPresent,
    pub checks: Vec<Check>,
}

/// Where the step runs.
#[derive(Debug, Clone, Serialize)]
pub struct Runner {
    pub os: Option<String>,
    pub name: Option<String>,
    /// `github-hosted` or `self-hosted`.
    pub environment: Option<String>,
}

impl CiReport {
    /// The exit status: that of the first failed check, else success.
    pub fn exit(&self) -> Exit {
        self.checks
            .iter()
            .find(|c| c.failed())
            .map(|c| c.exit)
            .unwrap_or(Exit::Ok)
    }
}

fn check(name: &'static str, status: CheckStatus, detail: String) -> Check {
    Check::general(name, status, detail)
}

/// The credentials present in `env`.
pub fn credentials_present(env: &Env) -> CredentialsPresent {
    let oauth_token = env.non_blank(claude::CLAUDE_CODE_OAUTH_TOKEN).is_some();
    let api_key = env.non_blank(claude::ANTHROPIC_API_KEY).is_some();
    let workload_identity = ["CLAUDE_CODE_USE_BEDROCK", "CLAUDE_CODE_USE_VERTEX"]
        .iter()
        .any(|v| env.non_blank(v).is_some_and(|x| x != "0" && x != "false"));
    // The CLI's own choice when several are set: users report the key wins.
    let cli_would_use = match (workload_identity, api_key, oauth_token) {
        (true, _, _) => "workload-identity",
        (false, true, _) => "api-key",
        (false, false, true) => "oauth-token",
        _ => "none",
    };
    let mut order = Vec::new();
    if oauth_token {
        order.push("oauth-token");
    }
    if api_key {
        order.push("api-key (only on a usage limit, with MOONAUTH_API_FALLBACK on)");
    }
    CredentialsPresent {
        oauth_token,
        api_key,
        workload_identity,
        cli_would_use,
        moonauth_run_order: order,
    }
}

/// The GitHub Actions checks: in the runner, the event, OIDC, the credentials. With
/// `request_oidc`, a token is requested and its claims kept in the report.
pub fn run_checks(config: &Config, env: &Env, request_oidc: bool) -> CiReport {
    let ctx = Context::from_env(env);
    let events = config.github.app_events.value.clone();
    let audience = config.github.oidc_audience.value.clone();
    let mut checks = Vec::new();

    checks.push(if ctx.actions {
        check("github-actions", CheckStatus::Ok, "running under GitHub Actions".into())
    } else {
        check(
            "github-actions",
            CheckStatus::Warn,
            "not running under GitHub Actions (GITHUB_ACTIONS is not true)".into(),
        )
        .warn("run this as a step of a workflow to check its event, OIDC and secrets")
    });

    checks.push(match ctx.event_name() {
        None => check("event", CheckStatus::Warn, "no GITHUB_EVENT_NAME".into())
            .warn("run this inside a workflow step"),
        Some(e) if events.iter().any(|x| x == e) => check(
            "event",
            CheckStatus::Ok,
            format!("{e} is an event the Claude GitHub App token exchange accepts"),
        ),
        Some(e) => check(
            "event",
            CheckStatus::Warn,
            format!("{e} is not in the token exchange's allow-list (MOONAUTH_GITHUB_EVENTS: {}); the exchange answers \"Invalid OIDC token\"", events.join(", ")),
        )
        .warn(format!(
            "trigger on an accepted event instead: let the workflow that runs on {e} send a repository_dispatch, use a pull_request trigger with a status check, or pass a github_token input (no token exchange)"
        )),
    });

    let mut claims = None;
    let oidc_check = match (ctx.oidc_available, request_oidc) {
        (false, _) => check(
            "oidc",
            CheckStatus::Warn,
            "no OIDC token can be requested (ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set)".into(),
        )
        .warn("add `permissions: id-token: write` to the job (needed for the Claude GitHub App token exchange)"),
        (true, false) => check(
            "oidc",
            CheckStatus::Ok,
            "an OIDC token can be requested (permissions: id-token: write)".into(),
        ),
        (true, true) => {
            // Both are set: `oidc_available` checked them.
            let url = env.non_blank(OIDC_REQUEST_VARS[0]).unwrap_or_default();
            let token = Secret::new(env.non_blank(OIDC_REQUEST_VARS[1]).unwrap_or_default());
            match oidc::claims(url, &token, &audience, OIDC_TIMEOUT) {
                Ok(c) => {
                    let sub = c.get("sub").and_then(Value::as_str).unwrap_or("?").to_string();
                    claims = Some(c);
                    check(
                        "oidc",
                        CheckStatus::Ok,
                        format!("got an OIDC token for audience {audience} (sub {sub})"),
                    )
                }
                Err(e) => check("oidc", CheckStatus::Fail, e.to_string()).fail(
                    Exit::Failure,
                    "check `permissions: id-token: write` and that the runner can reach its token service",
                ),
            }
        }
    };
    checks.push(oidc_check);

    let creds = credentials_present(env);
    let detail = format!(
        "present: {}; the claude CLI alone would use {}",
        [
            (creds.oauth_token, "OAuth token (CLAUDE_CODE_OAUTH_TOKEN)"),
            (creds.api_key, "API key (ANTHROPIC_API_KEY)"),
            (creds.workload_identity, "workload identity"),
        ]
        .iter()
        .filter(|(p, _)| *p)
        .map(|(_, n)| *n)
        .collect::<Vec<_>>()
        .join(", "),
        creds.cli_would_use
    );
    checks.push(match (creds.oauth_token, creds.api_key, creds.workload_identity) {
        (false, false, false) => check("credentials", CheckStatus::Fail, "no Claude credential in the step's environment".into()).fail(
            Exit::LoginUnusable,
            "pass a `claude setup-token` token as CLAUDE_CODE_OAUTH_TOKEN (secret claude_code_oauth_token) or an API key as ANTHROPIC_API_KEY",
        ),
        (true, true, _) => check("credentials", CheckStatus::Warn, detail).warn(
            "with both set, the CLI uses the API key and the subscription is not used; run it through `moonauth run` (subscription first, the key only on a usage limit with MOONAUTH_API_FALLBACK=1), or drop ANTHROPIC_API_KEY",
        ),
        _ => check("credentials", CheckStatus::Ok, detail),
    });

    let mut report = CiReport {
        schema: "moonauth.ci.v1",
        ok: true,
        exit_code: 0,
        github_actions: ctx.actions,
        event: ctx.event_name().map(str::to_string),
        repository: ctx.repository.clone(),
        runner: Runner {
            os: ctx.runner_os.clone(),
            name: ctx.runner_name.clone(),
            environment: ctx.runner_environment.clone(),
        },
        app_events: events,
        oidc: OidcReport {
            available: ctx.oidc_available,
            audience,
            claims,
        },
        credentials: creds,
        checks,
    };
    let exit = report.exit();
    report.ok = exit == Exit::Ok;
    report.exit_code = exit.code();
    report
}

/// Preflight's GitHub Actions section: the event, OIDC and credentials checks. A worker
/// may run on a login directory instead of the step's secrets, so nothing here fails it.
pub fn preflight_section(config: &Config, env: &Env) -> Vec<Check> {
    run_checks(config, env, false)
        .checks
        .into_iter()
        .filter(|c| c.check != "github-actions")
        .map(|mut c| {
            if c.failed() {
                c.status = CheckStatus::Warn;
                c.exit = Exit::Ok;
            }
            c
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Overrides;

    fn report(pairs: &[(&str, &str)]) -> CiReport {
        let env = Env::from_pairs(pairs.iter().copied());
        let config = Config::resolve(&env, &Overrides::default()).unwrap();
        run_checks(&config, &env, false)
    }

    fn status(r: &CiReport, name: &str) -> CheckStatus {
        r.checks.iter().find(|c| c.check == name).unwrap().status
    }

    #[test]
    fn push_is_outside_the_allow_list_and_says_what_works_instead() {
        let r = report(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-x"),
        ]);
        let event = r.checks.iter().find(|c| c.check == "event").unwrap();
        assert_eq!(event.status, CheckStatus::Warn);
        assert!(
            event.fix.as_deref().unwrap().contains("repository_dispatch"),
            "{event:?}"
        );
        assert!(r.ok);
        let r = report(&[
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "push"),
            ("MOONAUTH_GITHUB_EVENTS", "push, workflow_run"),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-x"),
        ]);
        assert_eq!(status(&r, "event"), CheckStatus::Ok);
    }

    #[test]
    fn both_credentials_warn_and_none_fails() {
        let r = report(&[
            ("CLAUDE_CODE_OAUTH_TOKEN", "sk-ant-oat01-x"),
            ("ANTHROPIC_API_KEY", "sk-ant-api03-x"),
        ]);
        assert_eq!(status(&r, "credentials"), CheckStatus::Warn);
        assert_eq!(r.credentials.cli_would_use, "api-key");
        let r = report(&[("GITHUB_ACTIONS", "true")]);
        assert_eq!(status(&r, "credentials"), CheckStatus::Fail);
        assert_eq!(r.exit(), Exit::LoginUnusable);
    }
}
