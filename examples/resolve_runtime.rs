// Resolving a task's runtime from Rust, as `moonauth runtime resolve` does.
// This file is the example in docs/runtime-resolution.md (a test keeps them equal).
use moonauth::agents::{default_task_runtime, normalize_payload, resolve_explicit, Runtime};
use moonauth::source::Env;
use serde_json::json;

fn main() -> Result<(), moonauth::error::Error> {
    // The environment is a value: from pairs here, `Env::load(std::env::vars(), None)` in a program.
    let env = Env::from_pairs([("MOONMIND_DEFAULT_TASK_RUNTIME", " Claude ")]);
    let default = default_task_runtime(&env)?;
    assert_eq!(default.value, Runtime::Claude);

    // An explicit value wins over the default; `universal` means the default.
    assert_eq!(resolve_explicit(Some("codex"), &default)?.value, Runtime::Codex);
    assert_eq!(resolve_explicit(Some("universal"), &default)?.value, Runtime::Claude);

    // A payload: the runtime is aligned in targetRuntime and task.runtime.mode, and
    // requiredCapabilities lists what the worker needs.
    let task = json!({"task": {"instructions": "x", "publish": {"mode": "none"}}});
    let normalized = normalize_payload(task, None, &default)?;
    assert_eq!(normalized.payload["targetRuntime"], "claude");
    assert_eq!(normalized.payload["task"]["runtime"]["mode"], "claude");
    assert_eq!(normalized.payload["requiredCapabilities"], json!(["claude", "git"]));

    // An unknown value is an error that names the field; it maps to exit code 2.
    let err = normalize_payload(json!({"targetRuntime": "gpt"}), None, &default).unwrap_err();
    assert!(err.to_string().contains("targetRuntime"));
    assert_eq!(err.exit().code(), 2);
    Ok(())
}
