//! Runtimes, worker modes, and the default task runtime: which CLI a task runs on.
//! Every fact about a CLI lives in [`claude`] or [`codex`]; [`LoginRuntime`] is a runtime
//! with a login, the only kind that reaches those facts about logins.
//!
//! Follows the MoonMind queue contract exactly (`docs/runtime-resolution.md`): an
//! explicit runtime wins, then `MOONMIND_DEFAULT_TASK_RUNTIME`, then `codex`; every
//! present value is validated so a bad one is never masked by a good one.

pub mod claude;
pub mod codex;

use std::fmt;

use serde::Serialize;
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::source::{Env, Source, Sourced};

/// A CLI a task runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Runtime {
    Codex,
    Claude,
    Gemini,
}

impl Runtime {
    /// The lower-case name used in variables, payloads and output.
    pub fn as_str(self) -> &'static str {
        match self {
            Runtime::Codex => "codex",
            Runtime::Claude => "claude",
            Runtime::Gemini => "gemini",
        }
    }

    /// The executable the runtime's CLI is installed as.
    pub fn binary(self) -> &'static str {
        match self {
            Runtime::Claude => claude::BINARY,
            Runtime::Codex => codex::BINARY,
            Runtime::Gemini => GEMINI_BINARY,
        }
    }

    /// How to install the runtime's CLI, for a check's fix.
    pub fn install_hint(self) -> &'static str {
        match self {
            Runtime::Claude => claude::INSTALL_HINT,
            Runtime::Codex => codex::INSTALL_HINT,
            Runtime::Gemini => GEMINI_INSTALL_HINT,
        }
    }

    /// The runtime as one with a login moonauth manages, or `None` for Gemini, whose
    /// login moonauth knows nothing about.
    pub fn login(self) -> Option<LoginRuntime> {
        LoginRuntime::try_from(self).ok()
    }

    /// The runtime as one with a login, or the usage error a login command gives for
    /// any other (the same words as [`parse_login_runtime`]).
    pub fn require_login(self) -> Result<LoginRuntime> {
        self.login().ok_or_else(|| Error::InvalidFlag {
            flag: "RUNTIME",
            value: self.to_string(),
            reason: LOGIN_RUNTIMES_ALLOWED.into(),
        })
    }
}

/// The executable the Gemini CLI is installed as. Gemini has no login moonauth manages,
/// so it has no module of facts of its own.
const GEMINI_BINARY: &str = "gemini";
const GEMINI_INSTALL_HINT: &str =
    "install the Gemini CLI in the worker image (npm install -g @google/gemini-cli) or add its directory to PATH";

/// A runtime whose login moonauth inspects, copies and refreshes: Claude Code or Codex.
/// Functions about login files, token endpoints and refreshes take this, so no runtime
/// without a login can reach another CLI's facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LoginRuntime {
    Codex,
    Claude,
}

impl LoginRuntime {
    /// The runtime this login belongs to.
    pub fn runtime(self) -> Runtime {
        match self {
            LoginRuntime::Codex => Runtime::Codex,
            LoginRuntime::Claude => Runtime::Claude,
        }
    }

    /// The lower-case name used in variables, payloads and output.
    pub fn as_str(self) -> &'static str {
        self.runtime().as_str()
    }

    /// The variable the CLI reads its login directory from.
    pub fn dir_variable(self) -> &'static str {
        match self {
            LoginRuntime::Claude => claude::DIR_VARIABLE,
            LoginRuntime::Codex => codex::DIR_VARIABLE,
        }
    }

    /// The file the CLI keeps its login in, inside the login directory.
    pub fn credentials_file(self) -> &'static str {
        match self {
            LoginRuntime::Claude => claude::CREDENTIALS_FILE,
            LoginRuntime::Codex => codex::AUTH_FILE,
        }
    }

    /// The files that make up a login, in the order they are put in place (the
    /// credentials file last, so a reader never sees new credentials with old settings).
    pub fn login_files(self) -> &'static [&'static str] {
        match self {
            LoginRuntime::Claude => &claude::LOGIN_FILES,
            LoginRuntime::Codex => &codex::LOGIN_FILES,
        }
    }

    /// The variables the CLI logs in with instead of its login file.
    pub fn credential_vars(self) -> &'static [&'static str] {
        match self {
            LoginRuntime::Claude => &claude::CREDENTIAL_VARS,
            LoginRuntime::Codex => &codex::CREDENTIAL_VARS,
        }
    }

    /// The variables an API key is handed to the CLI in.
    pub fn api_key_vars(self) -> &'static [&'static str] {
        match self {
            LoginRuntime::Claude => &claude::API_KEY_VARS,
            LoginRuntime::Codex => &codex::API_KEY_VARS,
        }
    }

    /// The API key variable to name to a person.
    pub fn api_key_var(self) -> &'static str {
        match self {
            LoginRuntime::Claude => claude::ANTHROPIC_API_KEY,
            LoginRuntime::Codex => codex::OPENAI_API_KEY,
        }
    }

    /// The command that logs the CLI in, inside a login container.
    pub fn login_command(self) -> &'static [&'static str] {
        match self {
            LoginRuntime::Claude => &claude::LOGIN_COMMAND,
            LoginRuntime::Codex => &codex::LOGIN_COMMAND,
        }
    }

    /// The arguments of the CLI's own status command.
    pub fn status_args(self) -> &'static [&'static str] {
        match self {
            LoginRuntime::Claude => &claude::STATUS_ARGS,
            LoginRuntime::Codex => &codex::STATUS_ARGS,
        }
    }

    /// The CLI's own status command, as a person types it.
    pub fn status_command(self) -> &'static str {
        match self {
            LoginRuntime::Claude => claude::STATUS_COMMAND,
            LoginRuntime::Codex => codex::STATUS_COMMAND,
        }
    }

    /// The CLI's token endpoint, unless configured otherwise.
    pub fn default_token_url(self) -> &'static str {
        match self {
            LoginRuntime::Claude => claude::TOKEN_URL,
            LoginRuntime::Codex => codex::TOKEN_URL,
        }
    }
}

impl TryFrom<Runtime> for LoginRuntime {
    /// The runtime, given back: it has no login moonauth manages.
    type Error = Runtime;

    fn try_from(runtime: Runtime) -> std::result::Result<Self, Runtime> {
        match runtime {
            Runtime::Claude => Ok(LoginRuntime::Claude),
            Runtime::Codex => Ok(LoginRuntime::Codex),
            Runtime::Gemini => Err(runtime),
        }
    }
}

impl From<LoginRuntime> for Runtime {
    fn from(login: LoginRuntime) -> Runtime {
        login.runtime()
    }
}

impl PartialEq<Runtime> for LoginRuntime {
    fn eq(&self, other: &Runtime) -> bool {
        self.runtime() == *other
    }
}

impl fmt::Display for LoginRuntime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every variable through which a CLI could pick a credential other than the login in
/// its directory: blanked in login containers, removed from `moonauth run` children.
pub const COMPETING_CREDENTIALS: [&str; 7] = [
    claude::COMPETING_VARS[0],
    claude::COMPETING_VARS[1],
    claude::COMPETING_VARS[2],
    claude::COMPETING_VARS[3],
    codex::COMPETING_VARS[0],
    codex::COMPETING_VARS[1],
    codex::COMPETING_VARS[2],
];

impl fmt::Display for Runtime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a worker container runs (`MOONMIND_WORKER_RUNTIME`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerMode {
    Codex,
    Claude,
    /// Both Codex and Claude.
    Universal,
    Gemini,
}

impl WorkerMode {
    /// The runtimes whose CLI and login the mode needs.
    pub fn runtimes(self) -> &'static [Runtime] {
        match self {
            WorkerMode::Codex => &[Runtime::Codex],
            WorkerMode::Claude => &[Runtime::Claude],
            WorkerMode::Universal => &[Runtime::Codex, Runtime::Claude],
            WorkerMode::Gemini => &[Runtime::Gemini],
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            WorkerMode::Codex => "codex",
            WorkerMode::Claude => "claude",
            WorkerMode::Universal => "universal",
            WorkerMode::Gemini => "gemini",
        }
    }
}

impl fmt::Display for WorkerMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses a worker mode, trimmed and lower-cased.
pub fn parse_worker_mode(value: &str) -> std::result::Result<WorkerMode, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "codex" => Ok(WorkerMode::Codex),
        "claude" => Ok(WorkerMode::Claude),
        "universal" => Ok(WorkerMode::Universal),
        "gemini" => Ok(WorkerMode::Gemini),
        _ => Err("allowed values: codex, claude, universal, gemini".into()),
    }
}

/// The command that logs `runtime` in: the configured login, or a named account's.
pub fn login_command(runtime: Runtime, account: Option<&str>) -> String {
    match account {
        None => format!("moonauth login {runtime}"),
        Some(a) => format!("moonauth login {runtime} --account {a}"),
    }
}

/// The account name of the configured login directory (no `--account`).
pub const DEFAULT_ACCOUNT: &str = "default";

/// The `moonauth login` command for `account` of `runtime` (none for the default account).
pub fn account_login_command(runtime: Runtime, account: &str) -> String {
    login_command(runtime, (account != DEFAULT_ACCOUNT).then_some(account))
}

/// The variable a runtime's CLI reads its login directory from.
pub fn dir_variable(runtime: LoginRuntime) -> &'static str {
    runtime.dir_variable()
}

/// Checks an account name: lower-case letters, digits, `-` and `_`, 1 to 40 characters.
pub fn validate_account(name: &str) -> Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 40
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidFlag {
            flag: "--account",
            value: name.to_string(),
            reason: "use 1 to 40 characters from a-z, 0-9, - and _".into(),
        })
    }
}

const LOGIN_RUNTIMES_ALLOWED: &str = "allowed values: claude, codex";

/// Parses a runtime with a login (`claude` or `codex`), for commands about logins.
pub fn parse_login_runtime(value: &str) -> std::result::Result<Runtime, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "codex" => Ok(Runtime::Codex),
        "claude" => Ok(Runtime::Claude),
        _ => Err(LOGIN_RUNTIMES_ALLOWED.into()),
    }
}

const DEFAULT_VARS: [&str; 2] = ["MOONMIND_DEFAULT_TASK_RUNTIME", "SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME"];

/// The configured default task runtime: `MOONMIND_DEFAULT_TASK_RUNTIME`, else its alias
/// `SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME`, else `codex`. `universal` is not a valid default.
pub fn default_task_runtime(env: &Env) -> Result<Sourced<Runtime>> {
    for var in DEFAULT_VARS {
        if let Some(value) = env.non_blank(var) {
            let runtime = match value.to_ascii_lowercase().as_str() {
                "codex" => Runtime::Codex,
                "claude" => Runtime::Claude,
                "gemini" => Runtime::Gemini,
                _ => {
                    return Err(Error::InvalidVariable {
                        var: var.to_string(),
                        value: value.to_string(),
                        reason: "allowed values: codex, claude, gemini".into(),
                    })
                }
            };
            return Ok(Sourced::new(runtime, env.source_of(var)));
        }
    }
    Ok(Sourced::new(Runtime::Codex, Source::Default))
}

/// A task value: a runtime, `universal` (meaning "the default"), or absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskValue {
    Absent,
    Universal,
    Runtime(Runtime),
}

const TASK_ALLOWED: &str = "allowed values: codex, claude, gemini, universal";

fn parse_task_value(field: &'static str, value: &Value) -> Result<TaskValue> {
    let text = match value {
        Value::Null => return Ok(TaskValue::Absent),
        Value::String(s) => s,
        other => {
            return Err(Error::InvalidPayloadField {
                field,
                value: other.to_string(),
                reason: format!("expected a string; {TASK_ALLOWED}"),
            })
        }
    };
    match text.trim().to_ascii_lowercase().as_str() {
        "" => Ok(TaskValue::Absent),
        "codex" => Ok(TaskValue::Runtime(Runtime::Codex)),
        "claude" => Ok(TaskValue::Runtime(Runtime::Claude)),
        "gemini" => Ok(TaskValue::Runtime(Runtime::Gemini)),
        "universal" => Ok(TaskValue::Universal),
        _ => Err(Error::InvalidPayloadField {
            field,
            value: text.clone(),
            reason: TASK_ALLOWED.into(),
        }),
    }
}

/// Resolves one explicit value (`--explicit`) against the default.
pub fn resolve_explicit(explicit: Option<&str>, default: &Sourced<Runtime>) -> Result<Sourced<Runtime>> {
    let value = match explicit {
        Some(v) => parse_task_value("explicit", &Value::String(v.to_string())).map_err(|e| match e {
            Error::InvalidPayloadField { value, reason, .. } => Error::InvalidFlag {
                flag: "--explicit",
                value,
                reason,
            },
            other => other,
        })?,
        None => TaskValue::Absent,
    };
    Ok(match value {
        TaskValue::Runtime(r) => Sourced::new(r, Source::Flag("--explicit")),
        TaskValue::Absent | TaskValue::Universal => default.clone(),
    })
}

/// A task payload with its runtime resolved and its capabilities listed.
#[derive(Debug, Clone, Serialize)]
pub struct NormalizedTask {
    pub runtime: Sourced<Runtime>,
    pub payload: Value,
}

/// Normalizes a task payload: resolves the runtime (an `--explicit` value first, then
/// `targetRuntime`, `target_runtime`, `task.runtime.mode` / `task.runtime`, then the
/// default), aligns `targetRuntime` and `task.runtime.mode` to it, normalizes
/// `task.publish.mode`, and computes `requiredCapabilities`.
pub fn normalize_payload(
    mut payload: Value,
    explicit: Option<&str>,
    default: &Sourced<Runtime>,
) -> Result<NormalizedTask> {
    let root = payload.as_object_mut().ok_or_else(|| Error::Payload {
        source_name: "payload".into(),
        reason: "the payload is not a JSON object".into(),
    })?;

    // Validate every present field first, so an invalid value is never masked.
    let explicit_value = match explicit {
        Some(v) => Some(resolve_explicit(Some(v), default)?),
        None => None,
    };
    let target = parse_task_value("targetRuntime", root.get("targetRuntime").unwrap_or(&Value::Null))?;
    let legacy = parse_task_value("target_runtime", root.get("target_runtime").unwrap_or(&Value::Null))?;
    let task_mode = match root.get("task").and_then(|t| t.get("runtime")) {
        None | Some(Value::Null) => TaskValue::Absent,
        Some(Value::String(_)) => parse_task_value("task.runtime", &root["task"]["runtime"])?,
        Some(Value::Object(rt)) => parse_task_value("task.runtime.mode", rt.get("mode").unwrap_or(&Value::Null))?,
        Some(other) => {
            return Err(Error::InvalidPayloadField {
                field: "task.runtime",
                value: other.to_string(),
                reason: "expected an object with mode, or a string".into(),
            })
        }
    };
    let publish_mode = match root
        .get("task")
        .and_then(|t| t.get("publish"))
        .and_then(|p| p.get("mode"))
    {
        None | Some(Value::Null) => "pr".to_string(),
        Some(Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "" => "pr".to_string(),
            m @ ("none" | "branch" | "pr") => m.to_string(),
            _ => {
                return Err(Error::InvalidPayloadField {
                    field: "publish.mode",
                    value: s.clone(),
                    reason: "allowed values: none, branch, pr".into(),
                })
            }
        },
        Some(other) => {
            return Err(Error::InvalidPayloadField {
                field: "publish.mode",
                value: other.to_string(),
                reason: "allowed values: none, branch, pr".into(),
            })
        }
    };

    let chosen = [
        (target, "targetRuntime"),
        (legacy, "target_runtime"),
        (task_mode, "task.runtime.mode"),
    ]
    .into_iter()
    .find(|(v, _)| *v != TaskValue::Absent);
    let runtime = match (explicit_value, chosen) {
        (Some(e), _) => e,
        (None, Some((TaskValue::Runtime(r), field))) => Sourced::new(r, Source::Payload(field)),
        (None, _) => default.clone(),
    };
    let rt = runtime.value.as_str();

    let own_caps = root.get("requiredCapabilities").cloned();
    root.insert("targetRuntime".into(), Value::String(rt.into()));
    if root.contains_key("target_runtime") {
        root.insert("target_runtime".into(), Value::String(rt.into()));
    }
    let task = root.entry("task").or_insert_with(|| Value::Object(Map::new()));
    let task = task.as_object_mut().ok_or_else(|| Error::InvalidPayloadField {
        field: "task",
        value: "non-object".into(),
        reason: "expected an object".into(),
    })?;
    match task.get_mut("runtime") {
        Some(Value::Object(rt_obj)) => {
            rt_obj.insert("mode".into(), Value::String(rt.into()));
        }
        _ => {
            let mut m = Map::new();
            m.insert("mode".into(), Value::String(rt.into()));
            task.insert("runtime".into(), Value::Object(m));
        }
    }
    match task.get_mut("publish") {
        Some(Value::Object(p)) => {
            p.insert("mode".into(), Value::String(publish_mode.clone()));
        }
        _ => {
            let mut m = Map::new();
            m.insert("mode".into(), Value::String(publish_mode.clone()));
            task.insert("publish".into(), Value::Object(m));
        }
    }

    let mut caps: Vec<String> = Vec::new();
    if let Some(Value::Array(items)) = own_caps {
        caps.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    caps.push(rt.to_string());
    caps.push("git".into());
    if publish_mode == "pr" {
        caps.push("gh".into());
    }
    if let Some(Value::Array(items)) = task.get("skill").and_then(|s| s.get("requiredCapabilities")) {
        caps.extend(items.iter().filter_map(|v| v.as_str().map(str::to_string)));
    }
    if task.get("container").and_then(|c| c.get("enabled")) == Some(&Value::Bool(true)) {
        caps.push("docker".into());
    }
    let mut seen = Vec::<String>::new();
    for cap in caps {
        let cap = cap.trim().to_ascii_lowercase();
        if !cap.is_empty() && !seen.contains(&cap) {
            seen.push(cap);
        }
    }
    root.insert(
        "requiredCapabilities".into(),
        Value::Array(seen.into_iter().map(Value::String).collect()),
    );

    Ok(NormalizedTask { runtime, payload })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The conformance table of docs/runtime-resolution.md, row by row.
    /// (default env, payload, Ok((runtime, capabilities)) or Err(name the error must contain))
    #[allow(clippy::type_complexity)]
    fn table() -> Vec<(
        &'static str,
        Option<&'static str>,
        Value,
        std::result::Result<(&'static str, Vec<&'static str>), &'static str>,
    )> {
        vec![
            (
                "1",
                None,
                json!({"task":{"instructions":"x"}}),
                Ok(("codex", vec!["codex", "git", "gh"])),
            ),
            (
                "2",
                None,
                json!({"task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"pr"}}}),
                Ok(("codex", vec!["codex", "git", "gh"])),
            ),
            (
                "3",
                Some("claude"),
                json!({"task":{"instructions":"x","publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "4",
                Some("claude"),
                json!({"targetRuntime":"codex","task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"none"}}}),
                Ok(("codex", vec!["codex", "git"])),
            ),
            (
                "5",
                Some("claude"),
                json!({"targetRuntime":" Codex ","task":{"instructions":"x","publish":{"mode":"none"}}}),
                Ok(("codex", vec!["codex", "git"])),
            ),
            (
                "6",
                None,
                json!({"targetRuntime":"claude","task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "7",
                Some("gemini"),
                json!({"task":{"instructions":"x","publish":{"mode":"branch"}}}),
                Ok(("gemini", vec!["gemini", "git"])),
            ),
            (
                "8",
                Some("universal"),
                json!({"task":{"instructions":"x"}}),
                Err("MOONMIND_DEFAULT_TASK_RUNTIME"),
            ),
            (
                "9",
                Some("claude"),
                json!({"targetRuntime":"universal","task":{"instructions":"x","publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "10",
                Some("claude"),
                json!({"targetRuntime":"  ","task":{"instructions":"x","publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "11",
                None,
                json!({"requiredCapabilities":["GIT","docker"],"task":{"instructions":"x"}}),
                Ok(("codex", vec!["git", "docker", "codex", "gh"])),
            ),
            (
                "12",
                None,
                json!({"task":{"instructions":"x","publish":{"mode":"none"},"container":{"enabled":true}}}),
                Ok(("codex", vec!["codex", "git", "docker"])),
            ),
            (
                "13",
                None,
                json!({"task":{"instructions":"x","publish":{"mode":"PR"}}}),
                Ok(("codex", vec!["codex", "git", "gh"])),
            ),
            (
                "14a",
                None,
                json!({"target_runtime":"claude","task":{"instructions":"x","publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "14b",
                None,
                json!({"targetRuntime":"claude","task":{"instructions":"x","runtime":{"mode":"gpt"}}}),
                Err("task.runtime.mode"),
            ),
            (
                "14c",
                None,
                json!({"task":{"instructions":"x","runtime":"Claude","publish":{"mode":"none"}}}),
                Ok(("claude", vec!["claude", "git"])),
            ),
            (
                "14d",
                None,
                json!({"task":{"instructions":"x","skill":{"id":"s","requiredCapabilities":["qdrant"]}}}),
                Ok(("codex", vec!["codex", "git", "gh", "qdrant"])),
            ),
            (
                "14",
                None,
                json!({"targetRuntime":"unknown-runtime","task":{"instructions":"x"}}),
                Err("targetRuntime"),
            ),
            (
                "15",
                None,
                json!({"task":{"instructions":"x","runtime":{"mode":"gpt"}}}),
                Err("task.runtime.mode"),
            ),
            (
                "16",
                Some("bogus"),
                json!({"task":{"instructions":"x"}}),
                Err("MOONMIND_DEFAULT_TASK_RUNTIME"),
            ),
            (
                "17",
                None,
                json!({"task":{"instructions":"x","publish":{"mode":"zip"}}}),
                Err("publish.mode"),
            ),
        ]
    }

    #[test]
    fn conformance_table() {
        for (row, default_env, payload, expected) in table() {
            let env = match default_env {
                Some(v) => Env::from_pairs([("MOONMIND_DEFAULT_TASK_RUNTIME", v)]),
                None => Env::default(),
            };
            let result = default_task_runtime(&env).and_then(|d| normalize_payload(payload, None, &d));
            match (result, expected) {
                (Ok(n), Ok((rt, caps))) => {
                    assert_eq!(n.runtime.value.as_str(), rt, "row {row}");
                    assert_eq!(n.payload["targetRuntime"], rt, "row {row}");
                    assert_eq!(n.payload["task"]["runtime"]["mode"], rt, "row {row}");
                    let got: Vec<&str> = n.payload["requiredCapabilities"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|v| v.as_str().unwrap())
                        .collect();
                    assert_eq!(got, caps, "row {row}");
                }
                (Err(e), Err(name)) => {
                    assert_eq!(e.exit(), crate::exit::Exit::Usage, "row {row}");
                    assert!(e.to_string().contains(name), "row {row}: {e}");
                }
                (got, want) => panic!("row {row}: got {got:?}, want {want:?}"),
            }
        }
    }

    #[test]
    fn unknown_target_runtime_lists_allowed_values() {
        let err = normalize_payload(
            json!({"targetRuntime":"gpt"}),
            None,
            &Sourced::new(Runtime::Codex, Source::Default),
        )
        .unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("gpt") && msg.contains("codex, claude, gemini"), "{msg}");
    }

    #[test]
    fn publish_mode_is_normalized_in_the_payload() {
        let n = normalize_payload(
            json!({"task":{"publish":{"mode":" PR "}}}),
            None,
            &Sourced::new(Runtime::Codex, Source::Default),
        )
        .unwrap();
        assert_eq!(n.payload["task"]["publish"]["mode"], "pr");
    }

    #[test]
    fn alias_variable_is_used_and_first_wins() {
        let env = Env::from_pairs([("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "claude")]);
        assert_eq!(default_task_runtime(&env).unwrap().value, Runtime::Claude);
        let env = Env::from_pairs([
            ("MOONMIND_DEFAULT_TASK_RUNTIME", "gemini"),
            ("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "claude"),
        ]);
        assert_eq!(default_task_runtime(&env).unwrap().value, Runtime::Gemini);
        let env = Env::from_pairs([
            ("MOONMIND_DEFAULT_TASK_RUNTIME", "  "),
            ("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", " Claude "),
        ]);
        assert_eq!(default_task_runtime(&env).unwrap().value, Runtime::Claude);
    }

    #[test]
    fn explicit_wins_and_universal_means_default() {
        let d = Sourced::new(Runtime::Claude, Source::Default);
        assert_eq!(resolve_explicit(Some(" CODEX "), &d).unwrap().value, Runtime::Codex);
        assert_eq!(resolve_explicit(Some("universal"), &d).unwrap().value, Runtime::Claude);
        assert_eq!(resolve_explicit(None, &d).unwrap().value, Runtime::Claude);
        let e = resolve_explicit(Some("gpt"), &d).unwrap_err();
        assert!(e.to_string().contains("--explicit"));
    }

    #[test]
    fn worker_mode_is_trimmed_and_lowercased() {
        assert_eq!(parse_worker_mode(" Universal\n"), Ok(WorkerMode::Universal));
        assert!(parse_worker_mode("both").is_err());
    }
}
