//! Continuing an interrupted session on another login: where each CLI keeps a session
//! (Claude: `projects/<cwd-slug>/<id>.jsonl`; Codex: `sessions/YYYY/MM/DD/rollout-…-<id>.jsonl`),
//! copying it into the next login directory, and the arguments that resume it
//! (`claude --resume <id> -p <continuation>`, `codex exec … resume <id> <continuation>`).

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::agents::Runtime;
use crate::error::{Error, Result};

pub use crate::config::DEFAULT_CONTINUATION;

/// Claude Code options that take a value (so the word after them is not the prompt).
const CLAUDE_VALUE_FLAGS: &[&str] = &[
    "--add-dir",
    "--agent",
    "--agents",
    "--allowedTools",
    "--allowed-tools",
    "--append-system-prompt",
    "--append-system-prompt-file",
    "--autocompact",
    "--betas",
    "--debug-file",
    "--disallowedTools",
    "--disallowed-tools",
    "--effort",
    "--fallback-model",
    "--file",
    "--input-format",
    "--json-schema",
    "--max-budget-usd",
    "--max-turns",
    "--mcp-config",
    "--model",
    "-n",
    "--name",
    "--output-format",
    "--permission-mode",
    "--permission-prompt-tool",
    "--permission-prompts",
    "--plugin-dir",
    "--plugin-url",
    "-r",
    "--resume",
    "--session-id",
    "--setting-sources",
    "--settings",
    "--system-prompt",
    "--system-prompt-file",
    "--tools",
];

/// Codex `exec` options that take a value.
const CODEX_VALUE_FLAGS: &[&str] = &[
    "-c",
    "--config",
    "-m",
    "--model",
    "-p",
    "--profile",
    "-s",
    "--sandbox",
    "-C",
    "--cd",
    "-i",
    "--image",
    "--output-schema",
    "-o",
    "--output-last-message",
    "--color",
    "--add-dir",
    "--enable",
    "--disable",
    "--local-provider",
];

fn takes_value(flags: &[&str], arg: &str) -> bool {
    !arg.contains('=') && flags.contains(&arg)
}

/// Index of the prompt in Claude Code arguments: the word after `-p`/`--print`, else the
/// first positional word.
fn claude_prompt_index(args: &[String]) -> Option<usize> {
    if let Some(i) = args.iter().position(|a| a == "-p" || a == "--print") {
        if args.get(i + 1).is_some_and(|a| !a.starts_with('-')) {
            return Some(i + 1);
        }
    }
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            return (i + 1 < args.len()).then_some(i + 1);
        }
        if a.starts_with('-') {
            i += if takes_value(CLAUDE_VALUE_FLAGS, a) { 2 } else { 1 };
            continue;
        }
        return Some(i);
    }
    None
}

/// Arguments that resume Claude session `id` with `continuation`, keeping every other
/// argument (output format, model, tools…).
pub fn claude_resume_args(original: &[String], id: &str, continuation: &str) -> Vec<String> {
    let mut args: Vec<String> = original.to_vec();
    // An earlier --resume/--session-id/--continue would fight the new one.
    let mut i = 0;
    while i < args.len() {
        match args[i].as_str() {
            "-r" | "--resume" | "--session-id" => {
                args.drain(i..(i + 2).min(args.len()));
            }
            "-c" | "--continue" => {
                args.remove(i);
            }
            a if a.starts_with("--resume=") || a.starts_with("--session-id=") => {
                args.remove(i);
            }
            _ => i += 1,
        }
    }
    match claude_prompt_index(&args) {
        Some(i) => args[i] = continuation.to_string(),
        None => {
            if !args.iter().any(|a| a == "-p" || a == "--print") {
                args.push("-p".into());
            }
            args.push(continuation.to_string());
        }
    }
    let mut out = vec!["--resume".to_string(), id.to_string()];
    out.extend(args);
    out
}

/// Arguments that resume Codex thread `id` with `continuation`: `… exec <options> resume <id> <continuation>`.
pub fn codex_resume_args(original: &[String], id: &str, continuation: &str) -> Vec<String> {
    let Some(exec) = original.iter().position(|a| a == "exec" || a == "e") else {
        // Not an exec run: nothing non-interactive to resume; start it again.
        return original.to_vec();
    };
    let mut out: Vec<String> = original[..=exec].to_vec();
    let rest = &original[exec + 1..];
    let mut i = 0;
    let mut positional_seen = false;
    while i < rest.len() {
        let a = &rest[i];
        if a == "resume" && !positional_seen {
            // Already a resume: drop it and its id; the prompt after is replaced below.
            i += 2;
            continue;
        }
        if a.starts_with('-') && a != "-" {
            out.push(a.clone());
            if takes_value(CODEX_VALUE_FLAGS, a) {
                if let Some(v) = rest.get(i + 1) {
                    out.push(v.clone());
                }
                i += 2;
            } else {
                i += 1;
            }
            continue;
        }
        // The prompt (or `-` for stdin): replaced by the continuation.
        positional_seen = true;
        i += 1;
    }
    out.extend(["resume".to_string(), id.to_string(), continuation.to_string()]);
    out
}

/// Finds the session file of `id` under a login directory.
pub fn find_session(runtime: Runtime, dir: &Path, id: &str) -> Option<PathBuf> {
    match runtime {
        Runtime::Claude => {
            let projects = dir.join("projects");
            let name = format!("{id}.jsonl");
            fs::read_dir(&projects)
                .ok()?
                .flatten()
                .map(|e| e.path().join(&name))
                .find(|p| p.is_file())
        }
        Runtime::Codex => find_rollout(&dir.join("sessions"), id, 4),
        // moonauth knows nothing of Gemini's sessions (and `run` takes only login runtimes).
        Runtime::Gemini => None,
    }
}

fn find_rollout(dir: &Path, id: &str, depth: u32) -> Option<PathBuf> {
    let suffix = format!("{id}.jsonl");
    for entry in fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let ft = entry.file_type().ok()?;
        if ft.is_file()
            && path
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.ends_with(&suffix))
        {
            return Some(path);
        }
        if ft.is_dir() && depth > 0 {
            if let Some(found) = find_rollout(&path, id, depth - 1) {
                return Some(found);
            }
        }
    }
    None
}

/// Copies session `id` from one login directory to another (same relative path, owner's
/// modes: directories 0700, the file 0600). Returns the copy's path, or `None` when the
/// session file does not exist.
pub fn carry_session(runtime: Runtime, from: &Path, to: &Path, id: &str) -> Result<Option<PathBuf>> {
    if from == to {
        return Ok(find_session(runtime, from, id));
    }
    let Some(src) = find_session(runtime, from, id) else {
        return Ok(None);
    };
    let rel = src.strip_prefix(from).expect("found under the directory");
    let dst = to.join(rel);
    if let Some(parent) = dst.parent() {
        let mut missing = Vec::new();
        let mut p = parent.to_path_buf();
        while !p.exists() && p.starts_with(to) {
            missing.push(p.clone());
            if !p.pop() {
                break;
            }
        }
        for d in missing.iter().rev() {
            fs::create_dir(d).map_err(|e| Error::io(format!("create {}", d.display()), e))?;
            let _ = fs::set_permissions(d, fs::Permissions::from_mode(0o700));
        }
    }
    let bytes = fs::read(&src).map_err(|e| Error::io(format!("read {}", src.display()), e))?;
    crate::credentials::apply::write_atomic(
        &dst,
        &bytes,
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
        0o600,
    )?;
    Ok(Some(dst))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(words: &[&str]) -> Vec<String> {
        words.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn claude_resume_replaces_the_prompt_and_keeps_flags() {
        let args = v(&["-p", "write the tests", "--output-format", "stream-json", "--verbose"]);
        assert_eq!(
            claude_resume_args(&args, "S1", "go on"),
            v(&[
                "--resume",
                "S1",
                "-p",
                "go on",
                "--output-format",
                "stream-json",
                "--verbose"
            ])
        );
        let args = v(&["--model", "opus", "--print", "--output-format", "json", "do it"]);
        assert_eq!(
            claude_resume_args(&args, "S2", "go on"),
            v(&[
                "--resume",
                "S2",
                "--model",
                "opus",
                "--print",
                "--output-format",
                "json",
                "go on"
            ])
        );
        let args = v(&["-p", "--resume", "OLD", "x"]);
        assert_eq!(claude_resume_args(&args, "S3", "c"), v(&["--resume", "S3", "-p", "c"]));
        // The prompt came on stdin: the continuation is added.
        let args = v(&["-p", "--output-format", "json"]);
        assert_eq!(
            claude_resume_args(&args, "S4", "c"),
            v(&["--resume", "S4", "-p", "--output-format", "json", "c"])
        );
    }

    #[test]
    fn codex_resume_goes_after_the_exec_options() {
        let args = v(&[
            "exec",
            "--skip-git-repo-check",
            "--json",
            "-c",
            "model_provider=fake",
            "do it",
        ]);
        assert_eq!(
            codex_resume_args(&args, "T1", "go on"),
            v(&[
                "exec",
                "--skip-git-repo-check",
                "--json",
                "-c",
                "model_provider=fake",
                "resume",
                "T1",
                "go on"
            ])
        );
        let args = v(&["exec", "--json", "resume", "OLD", "again"]);
        assert_eq!(
            codex_resume_args(&args, "T2", "c"),
            v(&["exec", "--json", "resume", "T2", "c"])
        );
    }

    #[test]
    fn sessions_are_found_and_carried_with_their_relative_path() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let src = a.path().join("projects/-work-repo/abc.jsonl");
        fs::create_dir_all(src.parent().unwrap()).unwrap();
        fs::write(&src, "{\"type\":\"user\"}\n").unwrap();
        let copied = carry_session(Runtime::Claude, a.path(), b.path(), "abc")
            .unwrap()
            .unwrap();
        assert_eq!(copied, b.path().join("projects/-work-repo/abc.jsonl"));
        assert_eq!(fs::read_to_string(copied).unwrap(), "{\"type\":\"user\"}\n");

        let src = a
            .path()
            .join("sessions/2026/11/24/rollout-2026-11-24T00-00-00-T9.jsonl");
        fs::create_dir_all(src.parent().unwrap()).unwrap();
        fs::write(&src, "{}\n").unwrap();
        let copied = carry_session(Runtime::Codex, a.path(), b.path(), "T9")
            .unwrap()
            .unwrap();
        assert!(copied.ends_with("sessions/2026/11/24/rollout-2026-11-24T00-00-00-T9.jsonl"));
        assert!(carry_session(Runtime::Codex, a.path(), b.path(), "nope")
            .unwrap()
            .is_none());
    }
}
