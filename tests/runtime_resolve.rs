//! `moonauth runtime resolve` through the binary: the conformance table of
//! docs/runtime-resolution.md row by row (payload on stdin), `--explicit`, and errors.

use serde_json::{json, Value};

use crate::support::sandbox::*;

/// What a row expects: the runtime and capabilities, or exit 2 naming `field`.
enum Want {
    Resolves(&'static str, &'static [&'static str]),
    Rejects(&'static str),
}
use Want::*;

/// (row, MOONMIND_DEFAULT_TASK_RUNTIME, payload, expected): the table in
/// docs/runtime-resolution.md, kept in the same order.
fn table() -> Vec<(&'static str, Option<&'static str>, Value, Want)> {
    vec![
        (
            "1",
            None,
            json!({"task":{"instructions":"x"}}),
            Resolves("codex", &["codex", "git", "gh"]),
        ),
        (
            "2",
            None,
            json!({"task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"pr"}}}),
            Resolves("codex", &["codex", "git", "gh"]),
        ),
        (
            "3",
            Some("claude"),
            json!({"task":{"instructions":"x","publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "4",
            Some("claude"),
            json!({"targetRuntime":"codex","task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"none"}}}),
            Resolves("codex", &["codex", "git"]),
        ),
        (
            "5",
            Some("claude"),
            json!({"targetRuntime":" Codex ","task":{"instructions":"x","publish":{"mode":"none"}}}),
            Resolves("codex", &["codex", "git"]),
        ),
        (
            "6",
            None,
            json!({"targetRuntime":"claude","task":{"instructions":"x","runtime":{"mode":"codex"},"publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "7",
            Some("gemini"),
            json!({"task":{"instructions":"x","publish":{"mode":"branch"}}}),
            Resolves("gemini", &["gemini", "git"]),
        ),
        (
            "8",
            Some("universal"),
            json!({"task":{"instructions":"x"}}),
            Rejects("MOONMIND_DEFAULT_TASK_RUNTIME"),
        ),
        (
            "9",
            Some("claude"),
            json!({"targetRuntime":"universal","task":{"instructions":"x","publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "10",
            Some("claude"),
            json!({"targetRuntime":"  ","task":{"instructions":"x","publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "11",
            None,
            json!({"requiredCapabilities":["GIT","docker"],"task":{"instructions":"x"}}),
            Resolves("codex", &["git", "docker", "codex", "gh"]),
        ),
        (
            "12",
            None,
            json!({"task":{"instructions":"x","publish":{"mode":"none"},"container":{"enabled":true}}}),
            Resolves("codex", &["codex", "git", "docker"]),
        ),
        (
            "13",
            None,
            json!({"task":{"instructions":"x","publish":{"mode":"PR"}}}),
            Resolves("codex", &["codex", "git", "gh"]),
        ),
        (
            "14a",
            None,
            json!({"target_runtime":"claude","task":{"instructions":"x","publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "14b",
            None,
            json!({"targetRuntime":"claude","task":{"instructions":"x","runtime":{"mode":"gpt"}}}),
            Rejects("task.runtime.mode"),
        ),
        (
            "14c",
            None,
            json!({"task":{"instructions":"x","runtime":"Claude","publish":{"mode":"none"}}}),
            Resolves("claude", &["claude", "git"]),
        ),
        (
            "14d",
            None,
            json!({"task":{"instructions":"x","skill":{"id":"s","requiredCapabilities":["qdrant"]}}}),
            Resolves("codex", &["codex", "git", "gh", "qdrant"]),
        ),
        (
            "14",
            None,
            json!({"targetRuntime":"unknown-runtime","task":{"instructions":"x"}}),
            Rejects("targetRuntime"),
        ),
        (
            "15",
            None,
            json!({"task":{"instructions":"x","runtime":{"mode":"gpt"}}}),
            Rejects("task.runtime.mode"),
        ),
        (
            "16",
            Some("bogus"),
            json!({"task":{"instructions":"x"}}),
            Rejects("MOONMIND_DEFAULT_TASK_RUNTIME"),
        ),
        (
            "17",
            None,
            json!({"task":{"instructions":"x","publish":{"mode":"zip"}}}),
            Rejects("publish.mode"),
        ),
    ]
}

fn resolve_stdin(sb: &Sandbox, default: Option<&str>, payload: &str) -> std::process::Output {
    let mut cmd = sb.moonauth();
    cmd.args(["runtime", "resolve", "--payload", "-"]).write_stdin(payload);
    if let Some(d) = default {
        cmd.env("MOONMIND_DEFAULT_TASK_RUNTIME", d);
    }
    cmd.output().unwrap()
}

#[test]
fn runtime_resolve_follows_the_conformance_table() {
    let sb = Sandbox::new();
    let rows = table();
    assert_eq!(rows.len(), 21, "every row of the table");
    for (row, default, payload, want) in rows {
        let out = resolve_stdin(&sb, default, &payload.to_string());
        match want {
            Resolves(runtime, caps) => {
                assert_eq!(code(&out), 0, "row {row}: {}", stderr(&out));
                let j = json(&out);
                assert_eq!(j["targetRuntime"], runtime, "row {row}");
                assert_eq!(j["task"]["runtime"]["mode"], runtime, "row {row}");
                assert_eq!(j["requiredCapabilities"], json!(caps), "row {row}");
                assert_eq!(
                    j["task"]["instructions"], "x",
                    "row {row}: the rest of the task is kept"
                );
            }
            Rejects(field) => {
                assert_eq!(code(&out), 2, "row {row}: {}", stdout(&out));
                assert!(stdout(&out).is_empty(), "row {row}");
                let err = stderr(&out);
                assert!(err.contains(field), "row {row}: {err}");
                assert!(err.contains("allowed values"), "row {row}: {err}");
            }
        }
    }
}

#[test]
fn runtime_resolve_reads_the_alias_variable_and_prefers_the_primary_one() {
    let sb = Sandbox::new();
    let payload = r#"{"task":{"instructions":"x","publish":{"mode":"none"}}}"#;
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--payload", "-"])
        .write_stdin(payload)
        .env("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "claude")
        .output()
        .unwrap();
    assert_eq!(json(&out)["targetRuntime"], "claude");
    let out = sb
        .moonauth()
        .args(["runtime", "resolve"])
        .env("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "claude")
        .env("MOONMIND_DEFAULT_TASK_RUNTIME", " Gemini ")
        .output()
        .unwrap();
    assert_eq!(stdout(&out), "gemini\n");
}

#[test]
fn runtime_resolve_normalizes_publish_mode_and_aligns_legacy_fields() {
    let sb = Sandbox::new();
    let out = resolve_stdin(
        &sb,
        Some("claude"),
        r#"{"target_runtime":"codex","task":{"runtime":{"mode":"codex","model":"m"},"publish":{"mode":" Branch "}}}"#,
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["targetRuntime"], "codex");
    assert_eq!(j["target_runtime"], "codex");
    assert_eq!(j["task"]["runtime"], json!({"mode":"codex","model":"m"}));
    assert_eq!(j["task"]["publish"]["mode"], "branch");
}

#[test]
fn runtime_resolve_reads_a_payload_file() {
    let sb = Sandbox::new();
    let file = sb.root().join("task.json");
    std::fs::write(
        &file,
        r#"{"targetRuntime":"claude","task":{"publish":{"mode":"none"}}}"#,
    )
    .unwrap();
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--payload"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0);
    assert_eq!(json(&out)["requiredCapabilities"], json!(["claude", "git"]));
}

#[test]
fn runtime_resolve_explicit_wins_over_the_default_and_universal_means_the_default() {
    let sb = Sandbox::new();
    let run = |args: &[&str], default: Option<&str>| {
        let mut cmd = sb.moonauth();
        cmd.args(["runtime", "resolve"]).args(args);
        if let Some(d) = default {
            cmd.env("MOONMIND_DEFAULT_TASK_RUNTIME", d);
        }
        let out = cmd.output().unwrap();
        (code(&out), stdout(&out))
    };
    assert_eq!(run(&[], None), (0, "codex\n".into()));
    assert_eq!(run(&[], Some("claude")), (0, "claude\n".into()));
    assert_eq!(run(&["--explicit", " CLAUDE "], Some("gemini")), (0, "claude\n".into()));
    assert_eq!(
        run(&["--explicit", "universal"], Some("gemini")),
        (0, "gemini\n".into())
    );
    assert_eq!(run(&["--explicit", ""], Some("gemini")), (0, "gemini\n".into()));

    let (code, text) = run(&["--explicit", "codex", "--json"], Some("claude"));
    assert_eq!(code, 0);
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        j,
        json!({"schema":"moonauth.runtime-resolve.v1","ok":true,"exit_code":0,"runtime":"codex","source":"flag --explicit"})
    );
    let (_, text) = run(&["--json"], Some("claude"));
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        j,
        json!({"schema":"moonauth.runtime-resolve.v1","ok":true,"exit_code":0,"runtime":"claude","source":"env MOONMIND_DEFAULT_TASK_RUNTIME"})
    );
    let (_, text) = run(&["--json"], None);
    let j: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        j,
        json!({"schema":"moonauth.runtime-resolve.v1","ok":true,"exit_code":0,"runtime":"codex","source":"default"})
    );
}

#[test]
fn runtime_resolve_explicit_wins_over_the_payload() {
    let sb = Sandbox::new();
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--explicit", "gemini", "--payload", "-"])
        .write_stdin(r#"{"targetRuntime":"claude","task":{"publish":{"mode":"none"}}}"#)
        .output()
        .unwrap();
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let j = json(&out);
    assert_eq!(j["targetRuntime"], "gemini");
    assert_eq!(j["task"]["runtime"]["mode"], "gemini");
}

#[test]
fn runtime_resolve_rejects_an_unknown_explicit_value_with_exit_2() {
    let sb = Sandbox::new();
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--explicit", "gpt"])
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    let err = stderr(&out);
    assert!(err.contains("--explicit") && err.contains("\"gpt\""), "{err}");
    assert!(err.contains("codex, claude, gemini, universal"), "{err}");
}

#[test]
fn runtime_resolve_rejects_an_invalid_default_variable_naming_it() {
    let sb = Sandbox::new();
    for (var, value) in [
        ("MOONMIND_DEFAULT_TASK_RUNTIME", "universal"),
        ("MOONMIND_DEFAULT_TASK_RUNTIME", "bogus"),
        ("SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME", "gpt"),
    ] {
        // With and without an explicit value: the default is validated either way.
        for args in [&[][..], &["--explicit", "codex"][..]] {
            let out = sb
                .moonauth()
                .args(["runtime", "resolve"])
                .args(args)
                .env(var, value)
                .output()
                .unwrap();
            assert_eq!(code(&out), 2, "{var}={value} {args:?}");
            let err = stderr(&out);
            assert!(err.contains(var) && err.contains(&format!("{value:?}")), "{err}");
            assert!(err.contains("codex, claude, gemini"), "{err}");
        }
    }
}

#[test]
fn runtime_resolve_rejects_a_payload_that_is_not_a_json_object() {
    let sb = Sandbox::new();
    for (payload, why) in [
        ("{not json", "not valid JSON"),
        ("", "not valid JSON"),
        ("[1,2]", "not a JSON object"),
        ("\"codex\"", "not a JSON object"),
    ] {
        let out = resolve_stdin(&sb, None, payload);
        assert_eq!(code(&out), 2, "{payload:?}");
        let err = stderr(&out);
        assert!(
            err.contains("cannot read the task payload from stdin") && err.contains(why),
            "{err}"
        );
    }
    let out = sb
        .moonauth()
        .args(["runtime", "resolve", "--payload"])
        .arg(sb.root().join("missing.json"))
        .output()
        .unwrap();
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("missing.json"), "{}", stderr(&out));
}

#[test]
fn runtime_resolve_rejects_fields_of_the_wrong_type_naming_them() {
    let sb = Sandbox::new();
    for (payload, field) in [
        (r#"{"targetRuntime":5}"#, "targetRuntime"),
        (r#"{"target_runtime":"gpt"}"#, "target_runtime"),
        (r#"{"task":{"runtime":7}}"#, "task.runtime"),
        (r#"{"task":{"runtime":"gpt"}}"#, "task.runtime"),
        (r#"{"task":{"publish":{"mode":true}}}"#, "publish.mode"),
        (r#"{"task":"do it"}"#, "task"),
    ] {
        let out = resolve_stdin(&sb, None, payload);
        assert_eq!(code(&out), 2, "{payload}: {}", stdout(&out));
        assert!(stderr(&out).contains(field), "{payload}: {}", stderr(&out));
    }
}
