//! Build facts for `moonauth --version`: the commit it was built from and the CLI
//! versions its file formats and error parsing were verified against (the pinned
//! `tools/clis/package.json`, which scripts/update-real-clis.sh moves on).

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=tools/clis/package.json");
    println!("cargo:rerun-if-changed=.git/HEAD");
    println!("cargo:rerun-if-changed=.git/refs/heads");
    let commit = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "unknown".into());
    let pins = std::fs::read_to_string("tools/clis/package.json").unwrap_or_default();
    let pinned = |package: &str| {
        let key = format!("\"{package}\":");
        pins.split_once(&key)
            .and_then(|(_, rest)| rest.split('"').nth(1))
            .map(str::to_string)
            .unwrap_or_else(|| "unknown".into())
    };
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
    println!(
        "cargo:rustc-env=BUILD_VERIFIED_CLAUDE={}",
        pinned("@anthropic-ai/claude-code")
    );
    println!("cargo:rustc-env=BUILD_VERIFIED_CODEX={}", pinned("@openai/codex"));
}
