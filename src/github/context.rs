//! What a GitHub Actions runner tells a step through its environment: the event, the
//! runner, the repository, the files a step writes to (`GITHUB_OUTPUT`,
//! `GITHUB_STEP_SUMMARY`, `GITHUB_ENV`) and whether an OIDC token can be requested.

use std::path::PathBuf;

use serde::Serialize;

use crate::source::Env;

/// The variables through which a step mints OIDC tokens (present only with
/// `permissions: id-token: write`). Removed from the CLI's environment, so the agent
/// cannot mint tokens (claude-code-action does the same).
pub const OIDC_REQUEST_VARS: [&str; 2] = ["ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"];

pub use crate::config::DEFAULT_APP_EVENTS;

/// The triggering event of the workflow run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `GITHUB_EVENT_NAME`.
    pub name: String,
    /// `GITHUB_EVENT_PATH`: the event's JSON payload.
    pub payload: Option<PathBuf>,
}

/// The step's GitHub Actions context; `None` fields were not set.
#[derive(Debug, Clone, Serialize)]
pub struct Context {
    /// `GITHUB_ACTIONS=true`.
    pub actions: bool,
    pub event: Option<Event>,
    pub repository: Option<String>,
    pub actor: Option<String>,
    #[serde(rename = "ref")]
    pub git_ref: Option<String>,
    pub sha: Option<String>,
    pub workflow: Option<String>,
    pub run_id: Option<String>,
    pub job: Option<String>,
    /// `RUNNER_OS`, `RUNNER_NAME`, `RUNNER_ENVIRONMENT` (`github-hosted`, `self-hosted`).
    pub runner_os: Option<String>,
    pub runner_name: Option<String>,
    pub runner_environment: Option<String>,
    /// The step's files.
    pub output_file: Option<PathBuf>,
    pub summary_file: Option<PathBuf>,
    pub env_file: Option<PathBuf>,
    /// Both OIDC request variables are set (`permissions: id-token: write`).
    pub oidc_available: bool,
}

impl Context {
    /// Reads the context from the environment.
    pub fn from_env(env: &Env) -> Context {
        let s = |name: &str| env.non_blank(name).map(str::to_string);
        let p = |name: &str| env.non_blank(name).map(PathBuf::from);
        Context {
            actions: env.get("GITHUB_ACTIONS") == Some("true"),
            event: s("GITHUB_EVENT_NAME").map(|name| Event {
                name,
                payload: p("GITHUB_EVENT_PATH"),
            }),
            repository: s("GITHUB_REPOSITORY"),
            actor: s("GITHUB_ACTOR"),
            git_ref: s("GITHUB_REF"),
            sha: s("GITHUB_SHA"),
            workflow: s("GITHUB_WORKFLOW"),
            run_id: s("GITHUB_RUN_ID"),
            job: s("GITHUB_JOB"),
            runner_os: s("RUNNER_OS"),
            runner_name: s("RUNNER_NAME"),
            runner_environment: s("RUNNER_ENVIRONMENT"),
            output_file: p("GITHUB_OUTPUT"),
            summary_file: p("GITHUB_STEP_SUMMARY"),
            env_file: p("GITHUB_ENV"),
            oidc_available: OIDC_REQUEST_VARS.iter().all(|v| env.non_blank(v).is_some()),
        }
    }

    /// The event's name, when the runner gave one.
    pub fn event_name(&self) -> Option<&str> {
        self.event.as_ref().map(|e| e.name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_runner_environment_and_oidc_needs_both_variables() {
        let env = Env::from_pairs([
            ("GITHUB_ACTIONS", "true"),
            ("GITHUB_EVENT_NAME", "workflow_run"),
            ("GITHUB_OUTPUT", "/tmp/out"),
            ("ACTIONS_ID_TOKEN_REQUEST_URL", "http://127.0.0.1:1/token?x=1"),
        ]);
        let c = Context::from_env(&env);
        assert!(c.actions);
        assert_eq!(c.event_name(), Some("workflow_run"));
        assert_eq!(c.output_file, Some(PathBuf::from("/tmp/out")));
        assert!(!c.oidc_available, "the request token is missing");
        assert!(!Context::from_env(&Env::from_pairs([("GITHUB_ACTIONS", "1")])).actions);
    }
}
