//! Captured outputs of the real CLIs, kept under `tests/samples/<cli>-<version>/` so the
//! classifier is checked without the CLIs too. Each case is `<case>.stdout`, `<case>.stderr`
//! and `<case>.meta.json` (how it was run, when it ended, what the classifier must say).
//! The real-CLI tests write them when `MOONAUTH_SAVE_SAMPLES=1`, with every credential,
//! temp path and port replaced by a placeholder.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// What a sample must classify as.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Expected {
    /// `Outcome::kind`.
    pub kind: String,
    /// RFC 3339; for usage limits whose reset the fake sent (or the text states).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resets_at: Option<String>,
    /// How far the classified reset may be from `resets_at`: 1 s when the CLI printed it
    /// structured, 60 s when only as a clock time (the CLIs print minutes).
    #[serde(default)]
    pub reset_tolerance_secs: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<String>,
    /// Whether a session id must be found.
    pub session_id: bool,
    pub session_started: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_error_status: Option<u16>,
}

/// How a sample was captured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Meta {
    pub runtime: String,
    pub cli_version: String,
    /// The command line, with placeholders.
    pub command: String,
    /// `Reply::name` of the fake, or `none` when the CLI never called it.
    pub reply: String,
    pub exit_code: Option<i32>,
    /// RFC 3339: when the CLI had exited (anchors clock times).
    pub finished_at: String,
    /// The CLI's time zone (IANA name).
    pub time_zone: String,
    /// API calls the fake answered during the run.
    pub api_calls: usize,
    /// `captured` (a real run) or `hand-written` (from cli-errors.md, for versions no
    /// longer pinned).
    pub origin: String,
    pub expected: Expected,
}

/// One sample read back.
pub struct Sample {
    pub dir: String,
    pub case: String,
    pub stdout: String,
    pub stderr: String,
    pub meta: Meta,
}

pub fn samples_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/samples")
}

pub fn saving() -> bool {
    std::env::var("MOONAUTH_SAVE_SAMPLES").as_deref() == Ok("1")
}

/// Replaces every secret and every run-specific path or port in `text`.
pub fn scrub(text: &str, replacements: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (value, placeholder) in replacements {
        if !value.is_empty() {
            out = out.replace(value.as_str(), placeholder);
        }
    }
    out
}

/// Writes a sample, refusing to write one that still holds a secret.
pub fn save(dir: &str, case: &str, stdout: &str, stderr: &str, meta: &Meta, secrets: &[String]) {
    let meta_json = serde_json::to_string_pretty(meta).expect("meta json") + "\n";
    for text in [stdout, stderr, meta_json.as_str()] {
        assert!(
            !text.contains("CANARY"),
            "sample {dir}/{case} still holds a CANARY value"
        );
        for secret in secrets {
            assert!(
                !text.contains(secret.as_str()),
                "sample {dir}/{case} still holds a credential"
            );
        }
    }
    let dir_path = samples_root().join(dir);
    std::fs::create_dir_all(&dir_path).expect("samples dir");
    std::fs::write(dir_path.join(format!("{case}.stdout")), stdout).expect("write stdout");
    std::fs::write(dir_path.join(format!("{case}.stderr")), stderr).expect("write stderr");
    std::fs::write(dir_path.join(format!("{case}.meta.json")), meta_json).expect("write meta");
}

/// Every sample under `tests/samples`, sorted by directory and case.
pub fn load_all() -> Vec<Sample> {
    let mut samples = Vec::new();
    let Ok(dirs) = std::fs::read_dir(samples_root()) else {
        return samples;
    };
    for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
        let dir_name = dir.file_name().to_string_lossy().into_owned();
        for entry in std::fs::read_dir(dir.path()).expect("read samples dir").flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(case) = name.strip_suffix(".meta.json") else {
                continue;
            };
            let read =
                |ext: &str| std::fs::read_to_string(dir.path().join(format!("{case}.{ext}"))).unwrap_or_default();
            let meta: Meta =
                serde_json::from_str(&read("meta.json")).unwrap_or_else(|e| panic!("{dir_name}/{case}.meta.json: {e}"));
            samples.push(Sample {
                dir: dir_name.clone(),
                case: case.to_string(),
                stdout: read("stdout"),
                stderr: read("stderr"),
                meta,
            });
        }
    }
    samples.sort_by(|a, b| (&a.dir, &a.case).cmp(&(&b.dir, &b.case)));
    samples
}
