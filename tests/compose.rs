//! The compose flow of compose/docker-compose.yaml, through the real engine and the real
//! docker-compose: `moonauth-init` prepares the auth volumes, then a Codex worker starts
//! through `moonauth preflight`. A worker whose volume holds a login runs its command; one
//! without a login exits with preflight's code and never runs it; a failed init keeps the
//! worker from starting at all.
//!
//! Each test is its own compose project with its own volumes (named after the process id),
//! removed by a guard even when the test fails. The test image (scripts/build-test-image.sh)
//! and the worker image built from compose/Dockerfile on top of it stay cached.
//!
//! Needs a Docker engine and docker-compose 1.29 or `docker compose` v2 (MOONAUTH_COMPOSE
//! picks one, e.g. `MOONAUTH_COMPOSE="docker compose"`). Without them the tests print a
//! notice and pass, unless MOONAUTH_REQUIRE_DOCKER=1 makes that a failure.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use crate::support::moonauth_bin;

/// The image scripts/build-test-image.sh builds.
const TEST_IMAGE: &str = "moonauth-test:latest";
/// compose/Dockerfile built on the test image: what MOONAUTH_IMAGE names in these tests.
const WORKER_IMAGE: &str = "moonauth-test-worker:latest";
/// What the worker command prints; its absence proves the command never started.
const WORKER_MARKER: &str = "MOONAUTH-COMPOSE-WORKER-RAN";
/// `Exit::LoginUnusable` in src/exit.rs (docs/exit-codes.md).
const EXIT_LOGIN_UNUSABLE: i32 = 4;
/// Where the compose file mounts the Codex volume by default.
const CODEX_MOUNT: &str = "/home/app/.codex";
/// Guards against a hung engine or compose; never an assertion about speed.
const COMMAND_LIMIT: Duration = Duration::from_secs(300);

/// Variables that would win over the test's .env in compose's variable substitution.
const COMPOSE_VARIABLES: &[&str] = &[
    "MOONAUTH_IMAGE",
    "MOONMIND_WORKER_COMMAND",
    "MOONMIND_WORKER_RUNTIME",
    "MOONMIND_DEFAULT_TASK_RUNTIME",
    "SPEC_WORKFLOW_DEFAULT_TASK_RUNTIME",
    "CODEX_VOLUME_NAME",
    "CODEX_VOLUME_PATH",
    "CODEX_HOME",
    "CLAUDE_VOLUME_NAME",
    "MOONAUTH_STATE_VOLUME",
    "CLAUDE_VOLUME_PATH",
    "CLAUDE_HOME",
    "CLAUDE_CONFIG_DIR",
    "MOONAUTH_WORKER_UID",
    "MOONAUTH_WORKER_GID",
    "MOONAUTH_AUTH_MODE",
    "MOONAUTH_EXPIRY_LEAD",
    "COMPOSE_FILE",
    "COMPOSE_PROJECT_NAME",
    "COMPOSE_PROFILES",
];

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A finished command: its status and everything it printed (stdout then stderr).
struct Run {
    status: ExitStatus,
    stdout: String,
    output: String,
}

impl Run {
    fn describe(&self, what: &str) -> String {
        format!("{what}: {}\n--- output ---\n{}", self.status, self.output)
    }
}

/// Runs a command with `input` on stdin (or none), killing it if it hangs.
fn run(mut cmd: Command, input: Option<&[u8]>) -> Run {
    let what = format!("{cmd:?}");
    cmd.stdin(if input.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot start {what}: {e}"));
    if let Some(bytes) = input {
        // Dropping the handle closes stdin, so the reader sees end of file.
        let mut stdin = child.stdin.take().expect("stdin was piped above");
        stdin
            .write_all(bytes)
            .unwrap_or_else(|e| panic!("cannot write to {what}: {e}"));
    }
    let mut out = child.stdout.take().expect("stdout was piped above");
    let mut err = child.stderr.take().expect("stderr was piped above");
    let out = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = out.read_to_end(&mut buf);
        buf
    });
    let err = thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = err.read_to_end(&mut buf);
        buf
    });
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(50)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{what} did not finish within {COMMAND_LIMIT:?}");
            }
            Err(e) => panic!("waiting for {what}: {e}"),
        }
    };
    let stdout = String::from_utf8_lossy(&out.join().unwrap_or_default()).into_owned();
    let stderr = String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned();
    let output = format!("{stdout}{stderr}");
    Run { status, stdout, output }
}

fn docker(args: &[&str]) -> Command {
    let mut cmd = Command::new("docker");
    cmd.args(args);
    cmd
}

/// Runs `docker ARGS` and panics with its output unless it succeeds.
fn docker_ok(args: &[&str], input: Option<&[u8]>) -> Run {
    let r = run(docker(args), input);
    assert!(
        r.status.success(),
        "{}",
        r.describe(&format!("docker {}", args.join(" ")))
    );
    r
}

/// The compose program: MOONAUTH_COMPOSE, else docker-compose, else `docker compose`.
fn compose_program() -> Result<Vec<String>, String> {
    let works = |argv: &[String]| {
        Command::new(&argv[0])
            .args(&argv[1..])
            .arg("version")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Ok(chosen) = std::env::var("MOONAUTH_COMPOSE") {
        let argv: Vec<String> = chosen.split_whitespace().map(String::from).collect();
        if argv.is_empty() || !works(&argv) {
            return Err(format!(
                "MOONAUTH_COMPOSE=\"{chosen}\" does not run (`{chosen} version` failed)"
            ));
        }
        return Ok(argv);
    }
    [&["docker-compose"][..], &["docker", "compose"][..]]
        .into_iter()
        .map(|argv| argv.iter().map(|a| a.to_string()).collect::<Vec<_>>())
        .find(|argv| works(argv))
        .ok_or_else(|| "neither docker-compose nor `docker compose` works".to_string())
}

/// Why the Docker tests cannot run here, if they cannot.
fn missing_prerequisite() -> Option<String> {
    let engine = Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .stdin(Stdio::null())
        .output();
    match engine {
        Err(e) => return Some(format!("the docker CLI cannot be run: {e}")),
        Ok(o) if !o.status.success() => {
            return Some(format!(
                "no Docker engine answers: {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ))
        }
        Ok(_) => {}
    }
    compose_program().err()
}

/// True when the Docker tests can run; otherwise prints why and returns false, or fails the
/// test when MOONAUTH_REQUIRE_DOCKER=1.
fn docker_ready(test: &str) -> bool {
    let Some(reason) = missing_prerequisite() else {
        return true;
    };
    if std::env::var("MOONAUTH_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
        panic!("{test}: MOONAUTH_REQUIRE_DOCKER=1 but {reason}");
    }
    eprintln!("skipping {test}: {reason} (set MOONAUTH_REQUIRE_DOCKER=1 to fail instead)");
    false
}

/// Builds the test image and the compose/Dockerfile worker image on it, once per process.
fn images() {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let bin = moonauth_bin();
        let mut script = Command::new("bash");
        script
            .arg(repo().join("scripts/build-test-image.sh"))
            .arg("--bin")
            .arg(bin)
            .args(["--tag", TEST_IMAGE]);
        let r = run(script, None);
        if !r.status.success() {
            return Err(r.describe("scripts/build-test-image.sh"));
        }

        // compose/Dockerfile copies target/release/moonauth from its context by default;
        // give it exactly that, so the test builds the file as an operator would.
        let ctx = tempfile::tempdir().map_err(|e| e.to_string())?;
        let dest = ctx.path().join("target/release");
        std::fs::create_dir_all(&dest).map_err(|e| e.to_string())?;
        std::fs::copy(bin, dest.join("moonauth")).map_err(|e| e.to_string())?;
        let dockerfile = repo().join("compose/Dockerfile");
        let r = run(
            docker(&[
                "build",
                "--file",
                path_str(&dockerfile),
                "--build-arg",
                &format!("BASE_IMAGE={TEST_IMAGE}"),
                "--tag",
                WORKER_IMAGE,
                path_str(ctx.path()),
            ]),
            None,
        );
        if !r.status.success() {
            return Err(r.describe("docker build -f compose/Dockerfile"));
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("building the test images failed:\n{e}");
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// One compose project with its own volumes and .env; `Drop` takes it all down again.
struct Project {
    name: String,
    compose: Vec<String>,
    codex_volume: String,
    claude_volume: String,
    dir: tempfile::TempDir,
}

impl Project {
    /// A project for one test. `extra_env` lines are appended to its .env.
    fn new(case: &str, extra_env: &[&str]) -> Project {
        let name = format!("moonauth-compose-{}-{case}", std::process::id());
        let dir = tempfile::tempdir().expect("temp dir");
        let project = Project {
            codex_volume: format!("{name}-codex"),
            claude_volume: format!("{name}-claude"),
            compose: compose_program().expect("checked by docker_ready"),
            name,
            dir,
        };
        let mut env = format!(
            "MOONAUTH_IMAGE={WORKER_IMAGE}\n\
             CODEX_VOLUME_NAME={}\n\
             CLAUDE_VOLUME_NAME={}\n\
             MOONAUTH_STATE_VOLUME={}-state\n\
             MOONMIND_WORKER_COMMAND=echo {WORKER_MARKER}\n",
            project.codex_volume, project.claude_volume, project.name
        );
        for line in extra_env {
            env.push_str(line);
            env.push('\n');
        }
        std::fs::write(project.env_file(), env).expect("write .env");
        project
    }

    fn env_file(&self) -> PathBuf {
        self.dir.path().join(".env")
    }

    /// `<compose> --env-file … -f compose/docker-compose.yaml -p <name> ARGS`.
    fn compose(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&self.compose[0]);
        cmd.args(&self.compose[1..])
            .arg("--env-file")
            .arg(self.env_file())
            .arg("-f")
            .arg(repo().join("compose/docker-compose.yaml"))
            .args(["-p", &self.name])
            .args(args)
            .current_dir(self.dir.path());
        for var in COMPOSE_VARIABLES {
            cmd.env_remove(var);
        }
        cmd
    }

    /// Starts init, waits for it, then runs the Codex worker to its end.
    ///
    /// `run` rather than `up --exit-code-from worker-codex`: the latter implies
    /// `--abort-on-container-exit`, and docker-compose 1.29 then stops the worker as soon
    /// as the init container exits (done, successfully).
    fn run_codex_worker(&self) -> Run {
        run(self.compose(&["run", "--rm", "-T", "worker-codex"]), None)
    }

    /// What the init service printed.
    fn init_logs(&self) -> Run {
        run(self.compose(&["logs", "--no-color", "moonauth-init"]), None)
    }

    /// A failure message: the run's output and init's logs, which `compose run` does not show.
    fn explain(&self, r: &Run, what: &str) -> String {
        format!(
            "{}\n--- moonauth-init logs ---\n{}",
            r.describe(what),
            self.init_logs().output
        )
    }

    /// Logs Codex in on the project's volume with the stand-in CLI, as root: what a login
    /// placed by an administrator looks like before init gives it to the worker user.
    fn place_codex_login(&self) {
        docker_ok(&["volume", "create", &self.codex_volume], None);
        let mount = format!("{}:{CODEX_MOUNT}", self.codex_volume);
        let codex_home = format!("CODEX_HOME={CODEX_MOUNT}");
        let r = docker_ok(
            &[
                "run",
                "--rm",
                "-i",
                "-e",
                &codex_home,
                "-v",
                &mount,
                TEST_IMAGE,
                "codex",
                "login",
                "--device-auth",
            ],
            Some(b"good\n"),
        );
        assert!(
            r.stdout.contains("Successfully logged in"),
            "{}",
            r.describe("stand-in login")
        );
    }

    /// The sha256 of the Codex login file in the volume.
    fn codex_login_digest(&self) -> String {
        let mount = format!("{}:{CODEX_MOUNT}", self.codex_volume);
        let file = format!("{CODEX_MOUNT}/auth.json");
        let r = docker_ok(&["run", "--rm", "-v", &mount, TEST_IMAGE, "sha256sum", &file], None);
        r.stdout.split_whitespace().next().unwrap_or_default().to_string()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = run(
            self.compose(&["down", "--volumes", "--remove-orphans", "--timeout", "1"]),
            None,
        );
        remove_leftovers(
            &self.name,
            &[
                self.codex_volume.clone(),
                self.claude_volume.clone(),
                format!("{}-state", self.name),
            ],
        );
    }
}

/// Removes what compose could not take down (a run killed midway, a broken file): the
/// project's containers, `volumes` and its default network.
fn remove_leftovers(project: &str, volumes: &[String]) {
    let label = format!("label=com.docker.compose.project={project}");
    let ids = run(docker(&["ps", "--all", "--quiet", "--filter", &label]), None);
    for id in ids.stdout.split_whitespace() {
        let _ = run(docker(&["rm", "--force", "--volumes", id]), None);
    }
    let mut rm = docker(&["volume", "rm", "--force"]);
    rm.args(volumes);
    let _ = run(rm, None);
    let _ = run(docker(&["network", "rm", &format!("{project}_default")]), None);
}

fn assert_no_canary(r: &Run, what: &str) {
    assert!(!r.output.contains("CANARY"), "a token leaked into {}", r.describe(what));
}

#[test]
fn docker_compose_worker_with_a_login_passes_preflight_and_runs_its_command() {
    if !docker_ready("docker_compose_worker_with_a_login_passes_preflight_and_runs_its_command") {
        return;
    }
    images();
    let project = Project::new("login", &[]);
    project.place_codex_login();
    let before = project.codex_login_digest();

    let r = project.run_codex_worker();

    assert!(
        r.status.success(),
        "{}",
        project.explain(&r, "compose run worker-codex")
    );
    assert!(
        r.stdout.contains(WORKER_MARKER),
        "the worker command did not run: {}",
        project.explain(&r, "compose run worker-codex")
    );
    assert_no_canary(&r, "compose run");
    assert_no_canary(&project.init_logs(), "moonauth-init logs");
    // Init gives the login to the worker user; it never rewrites it.
    assert_eq!(project.codex_login_digest(), before, "init changed the login file");
}

#[test]
fn docker_compose_worker_without_a_login_fails_preflight_and_never_runs_its_command() {
    if !docker_ready("docker_compose_worker_without_a_login_fails_preflight_and_never_runs_its_command") {
        return;
    }
    images();
    let project = Project::new("nologin", &[]);

    let r = project.run_codex_worker();

    assert_eq!(
        r.status.code(),
        Some(EXIT_LOGIN_UNUSABLE),
        "expected preflight's login-unusable exit code: {}",
        project.explain(&r, "compose run worker-codex")
    );
    assert!(
        !r.output.contains(WORKER_MARKER),
        "the worker command ran: {}",
        r.describe("compose run")
    );
    let fail = r.output.lines().find(|l| l.starts_with("  ✗ login: "));
    assert!(fail.is_some(), "no failed login check: {}", r.describe("compose run"));
    assert!(
        r.output.contains("moonauth login codex"),
        "the failure does not say to run `moonauth login codex`: {}",
        r.describe("compose run")
    );
    assert_no_canary(&r, "compose run");
}

#[test]
fn docker_compose_worker_does_not_start_when_init_fails() {
    if !docker_ready("docker_compose_worker_does_not_start_when_init_fails") {
        return;
    }
    images();
    // Only init reads MOONMIND_DEFAULT_TASK_RUNTIME, so only init fails on it; the worker
    // would pass on its own, with a login that the worker user already owns.
    let project = Project::new("badinit", &["MOONMIND_DEFAULT_TASK_RUNTIME=not-a-runtime"]);
    project.place_codex_login();
    let mount = format!("{}:{CODEX_MOUNT}", project.codex_volume);
    docker_ok(
        &[
            "run",
            "--rm",
            "-v",
            &mount,
            TEST_IMAGE,
            "chown",
            "-R",
            "1000:1000",
            CODEX_MOUNT,
        ],
        None,
    );

    let r = project.run_codex_worker();

    assert!(
        !r.status.success(),
        "the worker started after a failed init: {}",
        r.describe("compose run")
    );
    assert!(
        !r.output.contains(WORKER_MARKER),
        "the worker command ran: {}",
        r.describe("compose run")
    );
    let logs = project.init_logs();
    assert!(
        logs.output.contains("MOONMIND_DEFAULT_TASK_RUNTIME"),
        "init's error does not name the variable: {}",
        logs.describe("moonauth-init logs")
    );
    assert_no_canary(&r, "compose run");
    assert_no_canary(&logs, "moonauth-init logs");
}

#[test]
fn docker_compose_renew_service_watches_and_stops_cleanly_on_sigterm() {
    if !docker_ready("docker_compose_renew_service_watches_and_stops_cleanly_on_sigterm") {
        return;
    }
    images();
    let project = Project::new("renew", &[]);
    project.place_codex_login();
    let up = run(project.compose(&["up", "-d", "moonauth-renew"]), None);
    assert!(
        up.status.success(),
        "{}",
        project.explain(&up, "compose up -d moonauth-renew")
    );
    // The watcher reports the first state of each login, then keeps running.
    // `ps -q` works alike in compose 1.29 and v2 (their container names differ).
    let ps = run(project.compose(&["ps", "-q", "moonauth-renew"]), None);
    let container = ps.stdout.trim().to_string();
    assert!(!container.is_empty(), "{}", ps.describe("compose ps -q"));
    let mut logs = String::new();
    for _ in 0..100 {
        logs = run(docker(&["logs", &container]), None).output;
        if logs.contains("fresh") {
            break;
        }
        thread::sleep(Duration::from_millis(200));
    }
    assert!(
        logs.contains("codex") && logs.contains("fresh"),
        "no first report from the watcher:\n{logs}"
    );
    let running = docker_ok(&["inspect", "--format", "{{.State.Running}}", &container], None);
    assert_eq!(running.stdout.trim(), "true", "the watcher exited:\n{logs}");
    let stop = run(project.compose(&["stop", "moonauth-renew"]), None);
    assert!(stop.status.success(), "{}", stop.describe("compose stop"));
    let code = docker_ok(&["inspect", "--format", "{{.State.ExitCode}}", &container], None);
    assert_eq!(code.stdout.trim(), "0", "SIGTERM must end the watcher cleanly:\n{logs}");
    assert!(!logs.contains("CANARY"), "a token reached the logs:\n{logs}");
}

/// Unquotes a scalar as `docker-compose config` prints it (PyYAML: plain, 'single' with
/// '' for a quote, or "double" with backslash escapes).
fn yaml_scalar(raw: &str) -> String {
    let raw = raw.trim();
    if let Some(inner) = raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
        inner.replace("''", "'")
    } else if let Some(inner) = raw.strip_prefix('"').and_then(|r| r.strip_suffix('"')) {
        inner.replace("\\\"", "\"").replace("\\\\", "\\")
    } else {
        raw.to_string()
    }
}

#[test]
fn the_env_template_reads_the_same_in_moonauth_and_docker_compose() {
    // The README's quick start is `cp .env-template .env`; both readers of that file must
    // accept it and agree on every value.
    let template = repo().join(".env-template");
    let env = moonauth::source::Env::load(Vec::new(), Some(&template))
        .unwrap_or_else(|e| panic!("moonauth cannot read .env-template: {e}"));
    let ours: Vec<(String, String)> = env.dotenv_only().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    assert!(
        ours.iter().any(|(k, _)| k == "MOONAUTH_CONTINUE_PROMPT"),
        "the template sets MOONAUTH_CONTINUE_PROMPT: {ours:?}"
    );
    let compose = match compose_program() {
        Ok(c) => c,
        Err(reason) => {
            if std::env::var("MOONAUTH_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
                panic!("MOONAUTH_REQUIRE_DOCKER=1 but {reason}");
            }
            eprintln!("skipping the docker-compose half: {reason}");
            return;
        }
    };
    // A compose file that only echoes each variable back through substitution.
    let dir = tempfile::tempdir().unwrap();
    let mut yaml = String::from("services:\n  echo:\n    image: scratch\n    environment:\n");
    for (k, _) in &ours {
        yaml.push_str(&format!("      {k}: \"${{{k}}}\"\n"));
    }
    std::fs::write(dir.path().join("docker-compose.yaml"), yaml).unwrap();
    let mut cmd = Command::new(&compose[0]);
    cmd.args(&compose[1..])
        .arg("--env-file")
        .arg(&template)
        .args(["--project-directory", path_str(dir.path())])
        .args(["-f", path_str(&dir.path().join("docker-compose.yaml")), "config"])
        .current_dir(dir.path());
    for (k, _) in &ours {
        cmd.env_remove(k);
    }
    let r = run(cmd, None);
    assert!(r.status.success(), "{}", r.describe("docker-compose config"));
    for (k, v) in &ours {
        let prefix = format!("{k}:");
        let line = r
            .stdout
            .lines()
            .map(str::trim)
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("docker-compose config has no {k}:\n{}", r.stdout));
        assert_eq!(
            &yaml_scalar(&line[prefix.len()..]),
            v,
            "{k} reads differently in docker-compose"
        );
    }
}

/// The Compose Specification's JSON schema as docker-compose ships it (Debian's
/// docker-compose vendors the spec's `compose_spec.json`).
const COMPOSE_SPEC_SCHEMA: &str = "/usr/lib/python3/dist-packages/compose/config/compose_spec.json";

#[test]
fn the_compose_file_validates_against_the_compose_specification_schema() {
    // Compose v2 reads the Compose Specification; with no v2 binary here, the schema is
    // the check that the file is one (docker-compose 1.29's `config` checks the rest).
    let schema = Path::new(COMPOSE_SPEC_SCHEMA);
    if !schema.exists() {
        if std::env::var("MOONAUTH_REQUIRE_DOCKER").is_ok_and(|v| v == "1") {
            panic!("MOONAUTH_REQUIRE_DOCKER=1 but {COMPOSE_SPEC_SCHEMA} is missing (apt-get install docker-compose)");
        }
        eprintln!("skipping: {COMPOSE_SPEC_SCHEMA} is missing");
        return;
    }
    let check = r#"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
doc = yaml.safe_load(open(sys.argv[2]))
errors = sorted(jsonschema.Draft201909Validator(schema).iter_errors(doc), key=str)
for e in errors:
    print("/".join(map(str, e.absolute_path)) + ": " + e.message)
sys.exit(1 if errors else 0)
"#;
    let file = repo().join("compose/docker-compose.yaml");
    let mut cmd = Command::new("python3");
    cmd.args(["-c", check, COMPOSE_SPEC_SCHEMA, path_str(&file)]);
    let r = run(cmd, None);
    assert!(
        r.status.success(),
        "{}",
        r.describe("validate compose/docker-compose.yaml")
    );

    // The check itself can fail: a service key the specification does not know.
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.yaml");
    std::fs::write(&bad, "services:\n  x:\n    image: busybox\n    not_a_compose_key: 1\n").unwrap();
    let mut cmd = Command::new("python3");
    cmd.args(["-c", check, COMPOSE_SPEC_SCHEMA, path_str(&bad)]);
    let r = run(cmd, None);
    assert!(
        !r.status.success(),
        "{}",
        r.describe("validate a file with an unknown key")
    );
    assert!(r.output.contains("not_a_compose_key"), "{}", r.output);
}

#[test]
fn docker_compose_takes_the_volumes_moonauth_made_without_a_label_warning() {
    if !docker_ready("docker_compose_takes_the_volumes_moonauth_made_without_a_label_warning") {
        return;
    }
    images();
    let project = Project::new("labels", &[]);
    let ensure = Command::new(crate::support::moonauth_bin())
        .args(["volumes", "ensure"])
        .env("CODEX_VOLUME_NAME", &project.codex_volume)
        .env("CLAUDE_VOLUME_NAME", &project.claude_volume)
        .stdin(Stdio::null())
        .output()
        .expect("run moonauth volumes ensure");
    assert!(ensure.status.success(), "{}", String::from_utf8_lossy(&ensure.stderr));
    // Only the init service: the workers wait for it to complete, which it never does
    // when nothing starts.
    let r = run(project.compose(&["up", "--no-start", "moonauth-init"]), None);
    assert!(
        r.status.success(),
        "{}",
        project.explain(&r, "compose up --no-start moonauth-init")
    );
    assert!(
        !r.output.contains("has changed"),
        "compose warned about moonauth's labels: {}",
        r.output
    );
}

/// Where `scripts/build-static.sh` leaves the static moonauth, relative to the checkout;
/// the quick start puts it on PATH and into the worker image from there.
const STATIC_IN_CHECKOUT: &str = "target/x86_64-unknown-linux-musl/release/moonauth";

/// The shell block of the README's "Quick start with compose" section.
fn readme_quick_start(readme: &str) -> String {
    let section = readme
        .split("\n## ")
        .find(|s| s.starts_with("Quick start with compose"))
        .expect("README.md has a \"Quick start with compose\" section");
    let block = section
        .split("```sh\n")
        .nth(1)
        .and_then(|rest| rest.split("\n```").next())
        .expect("the quick start section has a ```sh block");
    block.to_string()
}

/// Replaces the one line of `script` that starts with `start` by what `with` makes of it;
/// the README must still hold that step.
fn replace_step(script: &str, start: &str, with: impl Fn(&str) -> String) -> String {
    let matching: Vec<&str> = script.lines().filter(|l| l.starts_with(start)).collect();
    assert_eq!(
        matching.len(),
        1,
        "the README's quick start should have one line starting with `{start}`:\n{script}"
    );
    script
        .lines()
        .map(|l| if l.starts_with(start) { with(l) } else { l.to_string() })
        .collect::<Vec<_>>()
        .join("\n")
}

/// One run of the quick start: a fresh clone, names of its own for the image, the volumes
/// and the compose project; `Drop` removes the containers, volumes, network and image.
struct QuickStart {
    name: String,
    compose: Vec<String>,
    dir: tempfile::TempDir,
}

impl QuickStart {
    fn new() -> QuickStart {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        QuickStart {
            name: format!("moonauth-qs-{}-{nanos}", std::process::id()),
            compose: compose_program().expect("checked by docker_ready"),
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn clone_dir(&self) -> PathBuf {
        self.dir.path().join("moonauth")
    }

    fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    fn image(&self) -> String {
        format!("{}-worker:latest", self.name)
    }

    fn volumes(&self) -> [String; 3] {
        ["codex", "claude", "state"].map(|v| format!("{}-{v}", self.name))
    }

    /// `program` as a newcomer runs it in the clone: the host's PATH and engine, a home of
    /// the test's own (with the fake logins in ~/.claude and ~/.codex), and no moonauth,
    /// CLI or compose settings from the test process.
    fn newcomer(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        cmd.current_dir(self.clone_dir())
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.home());
        if let Some(host) = std::env::var_os("DOCKER_HOST") {
            cmd.env("DOCKER_HOST", host);
        }
        cmd
    }

    /// The newcomer's shell running `script`, stopping at the first failing line.
    fn shell(&self, script: &str) -> Command {
        let mut cmd = self.newcomer("sh");
        cmd.args(["-eux", "-c", script]);
        cmd
    }

    /// The ids of the project's containers of `service`.
    fn containers(&self, service: &str) -> Vec<String> {
        let project = format!("label=com.docker.compose.project={}", self.name);
        let service = format!("label=com.docker.compose.service={service}");
        let r = docker_ok(
            &["ps", "--all", "--quiet", "--filter", &project, "--filter", &service],
            None,
        );
        r.stdout.split_whitespace().map(String::from).collect()
    }

    /// Waits for the one container of `service` to exit; its exit code and its logs.
    fn finished(&self, service: &str) -> (String, Run) {
        let ids = self.containers(service);
        assert_eq!(ids.len(), 1, "one {service} container in {}: {ids:?}", self.name);
        let code = docker_ok(&["wait", &ids[0]], None).stdout.trim().to_string();
        (code, docker_ok(&["logs", &ids[0]], None))
    }
}

impl Drop for QuickStart {
    fn drop(&mut self) {
        if self.clone_dir().join(".env").exists() {
            let mut down = self.newcomer(&self.compose[0]);
            down.args(&self.compose[1..])
                .args([
                    "--env-file",
                    ".env",
                    "-f",
                    "compose/docker-compose.yaml",
                    "-p",
                    &self.name,
                ])
                .args(["down", "--volumes", "--remove-orphans", "--timeout", "1"]);
            let _ = run(down, None);
        }
        remove_leftovers(&self.name, &self.volumes());
        let _ = run(docker(&["image", "rm", "--force", &self.image()]), None);
    }
}

/// The README's quick start, line by line as written, on a fresh `git clone` of this
/// checkout: `cp .env-template .env`, the static build, PATH, the worker image from
/// compose/Dockerfile, `login --sync-from` of ~/.claude and ~/.codex, `status`, and
/// `docker-compose up -d`; then init must have exited 0 and every example worker must have
/// passed preflight and run its CLI's status command.
///
/// What a test cannot do as a newcomer would is replaced, each in one place below: the
/// `.env` gets names of this run's own (image, volumes, project), the static build is the
/// one this test process already has (copied where the script leaves it: building it again
/// in the clone would take minutes and gigabytes), `<your worker image>` is the local
/// busybox image with stand-in CLIs, the home directory holds fixture logins, and
/// `docker-compose` is whichever compose program is installed.
#[test]
fn the_readme_quick_start_works_on_a_fresh_clone() {
    if !docker_ready("the_readme_quick_start_works_on_a_fresh_clone") {
        return;
    }
    images();
    let qs = QuickStart::new();
    let clone = run(
        {
            let mut git = Command::new("git");
            git.args(["clone", "--quiet"]).arg(repo()).arg(qs.clone_dir());
            git
        },
        None,
    );
    assert!(clone.status.success(), "{}", clone.describe("git clone"));
    for (runtime, case) in [("claude", "valid-max"), ("codex", "chatgpt-valid")] {
        let from = repo().join("tests/fixtures").join(runtime).join(case);
        let to = qs.home().join(format!(".{runtime}"));
        std::fs::create_dir_all(&to).unwrap();
        for entry in std::fs::read_dir(&from).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }

    let readme = std::fs::read_to_string(qs.clone_dir().join("README.md")).unwrap();
    let steps = readme_quick_start(&readme);
    assert!(
        steps.contains(STATIC_IN_CHECKOUT),
        "the quick start no longer uses {STATIC_IN_CHECKOUT}:\n{steps}"
    );
    let [codex_volume, claude_volume, state_volume] = qs.volumes();
    let settings = [
        ("MOONAUTH_IMAGE", qs.image()),
        ("CODEX_VOLUME_NAME", codex_volume.clone()),
        ("CLAUDE_VOLUME_NAME", claude_volume.clone()),
        ("MOONAUTH_STATE_VOLUME", state_volume),
        ("COMPOSE_PROJECT_NAME", qs.name.clone()),
    ];
    // Editing .env as the README says (and making every name this run's own); each edit
    // is checked, so a setting the template lost fails here, not as a clash later.
    let mut script = replace_step(&steps, "cp .env-template .env", |line| {
        let mut edit = line.to_string();
        for (var, value) in &settings {
            edit.push_str(&format!(
                "\nsed -i 's|^{var}=.*|{var}={value}|' .env && grep -qx '{var}={value}' .env"
            ));
        }
        edit
    });
    let static_dir = Path::new(STATIC_IN_CHECKOUT).parent().unwrap().display().to_string();
    let static_bin = path_str(crate::support::static_moonauth()).to_string();
    script = replace_step(&script, "scripts/build-static.sh", |_| {
        format!("mkdir -p {static_dir} && cp '{static_bin}' {STATIC_IN_CHECKOUT}")
    });
    script = replace_step(&script, "docker build -f compose/Dockerfile", |line| {
        assert!(line.contains("<your worker image>") && line.contains("-t moonmind-worker:latest "));
        line.replace("<your worker image>", TEST_IMAGE)
            .replace("-t moonmind-worker:latest ", &format!("-t {} ", qs.image()))
    });
    script = replace_step(&script, "docker-compose ", |line| {
        line.replacen("docker-compose", &qs.compose.join(" "), 1)
    });

    let r = run(qs.shell(&script), None);
    assert!(
        r.status.success(),
        "{}",
        r.describe(&format!("the quick start:\n{script}\n"))
    );
    assert_no_canary(&r, "the quick start");

    // `moonauth status`: one block per volume, each logged in, with who it belongs to.
    for volume in [&claude_volume, &codex_volume] {
        let block: Vec<&str> = r
            .stdout
            .lines()
            .skip_while(|l| !l.starts_with(volume.as_str()))
            .take(3)
            .collect();
        assert!(
            block.len() == 3 && block[1].starts_with("  ✓ Logged in: oauth-valid"),
            "status does not show {volume} logged in: {block:?}\n{}",
            r.stdout
        );
    }
    assert!(r.stdout.contains("  - Account: dev@example.com"), "{}", r.stdout);

    let (code, init) = qs.finished("moonauth-init");
    assert_eq!(code, "0", "{}", init.describe("moonauth-init"));
    for (service, says) in [
        ("worker-codex", "Logged in using ChatGPT"),
        ("worker-claude", "loggedIn"),
        ("worker-universal", "Logged in using ChatGPT"),
    ] {
        let (code, logs) = qs.finished(service);
        assert_eq!(code, "0", "{}", logs.describe(service));
        assert!(
            logs.output.contains("ready:"),
            "no preflight report: {}",
            logs.describe(service)
        );
        assert!(logs.output.contains(says), "{}", logs.describe(service));
        assert_no_canary(&logs, service);
    }
}
