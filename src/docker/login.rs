//! Logging a volume in: the CLI's own interactive login in a container of the worker
//! image, or a copy (sync) of a host login directory. Both write to a staging
//! directory inside the volume first, check what was written, and only then put it in
//! place with `moonauth internal apply-login` (atomic renames), run by the static
//! moonauth that `helper` brings into a container of the empty image — so a sync needs
//! no worker image, and the worker image needs no moonauth. A login that fails, is
//! aborted or produces nothing usable leaves the previous login byte for byte.

use std::collections::HashMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerCreateBody, HostConfig};
use serde::Serialize;

use crate::agents::{codex, LoginRuntime, Runtime};
use crate::config::Config;
use crate::credentials::apply::STAGING_PREFIX;
use crate::credentials::{self, LoginClass};
use crate::docker::archive::{self, Scratch, TarEntry, VolumeMount};
use crate::docker::helper::{self, StaticBinary};
use crate::docker::volumes::{self, VolumeSpec, LABEL_MANAGED_BY};
use crate::docker::{session, Engine};
use crate::error::{Error, Result};

/// Blanked in login containers so the login cannot silently land on an API key.
pub use crate::agents::COMPETING_CREDENTIALS;

/// The default login command of a runtime. Codex uses the device code flow: its browser
/// callback on localhost:1455 cannot reach a container.
pub fn default_login_command(runtime: Runtime) -> Vec<String> {
    // Gemini has no login moonauth runs: no command (login runtimes are parsed before this).
    let words = runtime.login().map(LoginRuntime::login_command).unwrap_or_default();
    words.iter().map(|s| s.to_string()).collect()
}

/// Where a login goes: the volume, the image, the worker user, the path in the container,
/// and the static moonauth that puts it in place.
pub struct Target<'a> {
    pub spec: &'a VolumeSpec,
    /// The worker image the CLI's own login runs in (`--sync-from` needs none).
    pub image: Option<String>,
    /// Brought into the helper container that puts the login in place.
    pub helper: StaticBinary,
    pub uid: u32,
    pub gid: u32,
    /// The login directory inside containers (CLAUDE_HOME / CODEX_HOME): the volume is mounted here.
    pub mount: String,
}

impl<'a> Target<'a> {
    /// The target for `spec` from the configuration, with `image` overriding MOONAUTH_IMAGE.
    /// Finds the static moonauth first, so nothing starts that could not be finished.
    pub fn new(config: &Config, spec: &'a VolumeSpec, image: Option<String>) -> Result<Target<'a>> {
        let image = image.or_else(|| config.docker.image.as_ref().map(|i| i.value.clone()));
        let helper = helper::find(config.docker.static_bin.as_ref())?;
        tracing::debug!(origin = %helper.origin.display(), "static moonauth for the apply step");
        let mount = config
            .runtime(spec.runtime)
            .map(|s| s.login_dir.value.display().to_string())
            .unwrap_or_default();
        Ok(Target {
            spec,
            image,
            helper,
            uid: config.docker.uid.value,
            gid: config.docker.gid.value,
            mount,
        })
    }

    /// The worker image, which the CLI's own login needs.
    pub fn image(&self) -> Result<&str> {
        self.image.as_deref().ok_or(Error::NoImage)
    }

    fn staging(&self) -> String {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        format!("{}/{STAGING_PREFIX}{:x}-{}", self.mount, nanos, std::process::id())
    }

    fn volume_mount(&self) -> VolumeMount {
        VolumeMount {
            volume: self.spec.name.clone(),
            path: self.mount.clone(),
            read_only: false,
        }
    }
}

/// Fails with [`Error::ImageMissing`] when the engine has no `image` (nothing is pulled).
pub async fn require_image(engine: &Engine, image: &str) -> Result<()> {
    let found = engine
        .call_opt(format!("inspect image {image}"), engine.client().inspect_image(image))
        .await?;
    match found {
        Some(_) => Ok(()),
        None => Err(Error::ImageMissing {
            image: image.to_string(),
        }),
    }
}

/// Creates the staging directory (owned by the worker) with `files` in it.
async fn stage(engine: &Engine, target: &Target<'_>, staging: &str, files: &[(String, Vec<u8>)]) -> Result<()> {
    let scratch = Scratch::create(engine, &[target.volume_mount()]).await?;
    let name = staging.rsplit('/').next().unwrap_or(staging).to_string();
    let paths: Vec<String> = files.iter().map(|(f, _)| format!("{name}/{f}")).collect();
    let mut entries = vec![TarEntry::Dir {
        path: &name,
        uid: target.uid,
        gid: target.gid,
        mode: 0o700,
    }];
    for ((_, bytes), path) in files.iter().zip(&paths) {
        entries.push(TarEntry::File {
            path,
            bytes,
            uid: target.uid,
            gid: target.gid,
            mode: 0o600,
        });
    }
    let result = archive::upload(engine, &scratch.id, &target.mount, archive::tar_of(&entries)).await;
    let removed = scratch.remove(engine).await;
    result.and(removed)
}

/// Reads the login files present in a directory of a container's volume.
async fn read_files(
    engine: &Engine,
    container: &str,
    dir: &str,
    runtime: LoginRuntime,
) -> Result<Vec<(String, Vec<u8>)>> {
    let mut out = Vec::new();
    for name in credentials::login_files(runtime) {
        match archive::read_file(engine, container, &format!("{dir}/{name}")).await? {
            Ok(Some(entry)) => out.push((name.to_string(), entry.bytes)),
            Ok(None) => {}
            Err(reason) => {
                return Err(Error::LoginFailed {
                    what: format!("the new login cannot be read: {reason}"),
                    volume: String::new(),
                    hint: None,
                })
            }
        }
    }
    Ok(out)
}

fn base_env(runtime: LoginRuntime, dir: &str) -> Vec<String> {
    let dir_var = crate::agents::dir_variable(runtime);
    let mut env: Vec<String> = COMPETING_CREDENTIALS.iter().map(|v| format!("{v}=")).collect();
    env.push(format!("{dir_var}={dir}"));
    // HOME inside the persisted tree: the CLI's own settings file persists with the login.
    env.push(format!("HOME={dir}"));
    env.push("DISABLE_TELEMETRY=1".into());
    env.push("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1".into());
    env
}

/// Creates a container of the worker image with the target volume mounted and
/// moonauth's label; returns its id.
async fn create_with_volume(
    engine: &Engine,
    target: &Target<'_>,
    what: &str,
    body: ContainerCreateBody,
) -> Result<String> {
    let body = ContainerCreateBody {
        image: Some(target.image()?.to_string()),
        entrypoint: Some(Vec::new()),
        labels: Some(HashMap::from([(LABEL_MANAGED_BY.to_string(), "moonauth".to_string())])),
        host_config: Some(HostConfig {
            mounts: Some(archive::mounts(&[target.volume_mount()])),
            ..Default::default()
        }),
        ..body
    };
    let created = engine
        .call(
            format!("create the {what} container"),
            engine.client().create_container(None, body),
        )
        .await?;
    Ok(created.id)
}

/// Runs `moonauth internal apply-login` as root (to hand the files to the worker uid) in
/// the helper container, with the static moonauth brought in, and waits for it.
async fn run_apply(engine: &Engine, target: &Target<'_>, staging: &str, prune: bool, discard: bool) -> Result<()> {
    let mut args = vec![
        "internal".to_string(),
        "apply-login".into(),
        "--runtime".into(),
        target.spec.runtime.to_string(),
        "--dir".into(),
        target.mount.clone(),
        "--staging".into(),
        staging.to_string(),
        "--uid".into(),
        target.uid.to_string(),
        "--gid".into(),
        target.gid.to_string(),
    ];
    if prune {
        args.push("--prune".into());
    }
    if discard {
        args.push("--discard".into());
    }
    let action = if discard {
        "remove the staging directory"
    } else {
        "put the new login in place"
    };
    helper::run(engine, &target.helper, &[target.volume_mount()], &args, action).await
}

/// What a login or sync did.
#[derive(Debug, Clone, Serialize)]
pub struct LoginOutcome {
    pub volume: String,
    pub created_volume: bool,
    pub files: Vec<String>,
    /// Things the person must know (e.g. that a copied login shares its refresh token).
    pub warnings: Vec<String>,
}

/// Who the CLI's own login talks to: this process's terminal (`moonauth login`), or a
/// relay that is handed what the CLI prints and types the lines it is given (the
/// dashboard's re-auth). The login is the same either way.
pub enum Console {
    Terminal,
    Relay {
        output: tokio::sync::mpsc::UnboundedSender<Vec<u8>>,
        input: tokio::sync::mpsc::Receiver<String>,
    },
}

/// The CLI's own login, interactively, in a container; then verified and put in place.
pub async fn interactive(
    engine: &Engine,
    target: &Target<'_>,
    command: Vec<String>,
    console: Console,
) -> Result<LoginOutcome> {
    let runtime = target.spec.runtime.require_login()?;
    let image = target.image()?;
    let created_volume = volumes::ensure(engine, target.spec).await? == volumes::Ensured::Created;
    require_image(engine, image).await?;
    let staging = target.staging();

    // Codex must keep its login in a file, or it lands in a keyring the next container cannot see.
    let mut seed = Vec::new();
    if runtime == Runtime::Codex {
        let scratch = Scratch::create(engine, &[target.volume_mount()]).await?;
        let current =
            archive::read_file(engine, &scratch.id, &format!("{}/{}", target.mount, codex::CONFIG_FILE)).await;
        scratch.remove(engine).await?;
        let current = match current? {
            Ok(Some(e)) => Some(String::from_utf8_lossy(&e.bytes).into_owned()),
            _ => None,
        };
        let text = crate::credentials::codex::with_file_store(current.as_deref())
            .or(current)
            .unwrap_or_default();
        seed.push((codex::CONFIG_FILE.to_string(), text.into_bytes()));
    }
    stage(engine, target, &staging, &seed).await?;

    let mut env = base_env(runtime, &staging);
    env.push(format!(
        "TERM={}",
        std::env::var("TERM").unwrap_or_else(|_| "xterm-256color".into())
    ));
    let body = ContainerCreateBody {
        cmd: Some(command.clone()),
        user: Some(format!("{}:{}", target.uid, target.gid)),
        env: Some(env),
        working_dir: Some(staging.clone()),
        tty: Some(true),
        open_stdin: Some(true),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        ..Default::default()
    };
    let id = create_with_volume(engine, target, "login", body).await?;
    let volume = target.spec.name.clone();

    let result = async {
        let code = match console {
            Console::Terminal => session::run_attached(engine, &id).await?,
            Console::Relay { output, input } => session::run_relayed(engine, &id, output, input).await?,
        };
        if code != 0 {
            return Err(Error::LoginFailed {
                what: format!("`{}` exited with status {code}", command.join(" ")),
                volume: volume.clone(),
                hint: Some("run the login again; nothing was changed".into()),
            });
        }
        let files = read_files(engine, &id, &staging, runtime).await?;
        verify(runtime, &files, &volume)?;
        Ok(files)
    }
    .await;
    archive::remove_container(engine, &id).await?;
    match result {
        Ok(files) => {
            run_apply(engine, target, &staging, false, false).await?;
            Ok(LoginOutcome {
                volume,
                created_volume,
                files: files
                    .into_iter()
                    .map(|(n, _)| n)
                    .filter(|n| n != codex::CONFIG_FILE)
                    .collect(),
                warnings: Vec::new(),
            })
        }
        Err(e) => {
            if let Err(cleanup) = run_apply(engine, target, &staging, false, true).await {
                tracing::warn!("could not remove the staging directory {staging}: {cleanup}");
            }
            Err(e)
        }
    }
}

/// Checks that the staged files hold a usable login.
fn verify(runtime: LoginRuntime, files: &[(String, Vec<u8>)], volume: &str) -> Result<()> {
    let cred = credentials::login_file(runtime, Path::new("")).display().to_string();
    let Some((_, bytes)) = files.iter().find(|(n, _)| *n == cred) else {
        return Err(Error::LoginFailed {
            what: format!("the login wrote no {cred}"),
            volume: volume.to_string(),
            hint: Some("if the CLI stores logins in a keyring, set it to store them in a file".into()),
        });
    };
    let i = credentials::classify(runtime, bytes, SystemTime::now(), std::time::Duration::ZERO);
    if i.class.usable() {
        Ok(())
    } else {
        Err(Error::LoginFailed {
            what: format!("the new login is not usable ({}: {})", i.class.as_str(), i.detail),
            volume: volume.to_string(),
            hint: None,
        })
    }
}

/// Reads the login files of `runtime` from a host directory, refusing a directory whose
/// login lives in an OS keychain or that holds no usable login.
pub fn host_login(runtime: Runtime, from: &Path) -> Result<Vec<(String, Vec<u8>)>> {
    let runtime = runtime.require_login()?;
    let meta = std::fs::metadata(from).map_err(|e| Error::LoginFailed {
        what: format!("cannot read {}: {e}", from.display()),
        volume: String::new(),
        hint: None,
    })?;
    if !meta.is_dir() {
        return Err(Error::InvalidFlag {
            flag: "--sync-from",
            value: from.display().to_string(),
            reason: "not a directory".into(),
        });
    }
    let mut files = Vec::new();
    for name in credentials::login_files(runtime) {
        let mut path = from.join(name);
        // Without CLAUDE_CONFIG_DIR, Claude keeps .claude.json beside ~/.claude, not in it.
        if *name == crate::agents::claude::ACCOUNT_FILE
            && !path.exists()
            && from.file_name().is_some_and(|n| n == ".claude")
        {
            if let Some(parent) = from.parent() {
                path = parent.join(crate::agents::claude::ACCOUNT_FILE);
            }
        }
        let is_credentials = credentials::login_file(runtime, Path::new("")) == Path::new(name);
        let max = if is_credentials {
            credentials::MAX_CREDENTIAL_BYTES
        } else {
            credentials::MAX_CONFIG_BYTES
        };
        let read = if path.parent() == Some(from) {
            credentials::read_guarded(from, &path, max)
        } else {
            // .claude.json beside the directory is outside it by design; it is copied into
            // the volume, so a link there (to any host file) is refused, never followed.
            crate::fsx::read_file(&path, max).map_err(|e| e.to_string())
        };
        match read {
            Ok(Some(bytes)) => files.push((name.to_string(), bytes)),
            Ok(None) => {}
            Err(reason) => {
                return Err(Error::LoginFailed {
                    what: reason,
                    volume: String::new(),
                    hint: None,
                })
            }
        }
    }
    let cred = credentials::login_file(runtime, Path::new("")).display().to_string();
    let Some((_, bytes)) = files.iter().find(|(n, _)| *n == cred) else {
        let why = match runtime {
            LoginRuntime::Claude => format!(
                "{} has no {cred}: on macOS Claude Code keeps the login in the Keychain, which cannot be copied into a volume",
                from.display()
            ),
            LoginRuntime::Codex => {
                let config = files
                    .iter()
                    .find(|(n, _)| n == codex::CONFIG_FILE)
                    .map(|(_, b)| String::from_utf8_lossy(b).into_owned());
                credentials::missing_login(runtime, config.as_deref()).detail
            }
        };
        return Err(Error::LoginFailed {
            what: format!("nothing to sync: {why}"),
            volume: String::new(),
            hint: Some(format!(
                "log in inside the container instead: moonauth login {runtime} (without --sync-from)"
            )),
        });
    };
    let i = credentials::classify(runtime, bytes, SystemTime::now(), std::time::Duration::ZERO);
    if !i.class.usable() || i.class == LoginClass::OauthExpiredNotRefreshable {
        return Err(Error::LoginFailed {
            what: format!(
                "{} holds no usable login ({}: {})",
                from.display(),
                i.class.as_str(),
                i.detail
            ),
            volume: String::new(),
            hint: Some(format!("log in on the host again, or run `moonauth login {runtime}`")),
        });
    }
    Ok(files)
}

/// Copies a host login directory into the volume: staged, read back and compared, then
/// put in place; login files the source lacks are removed from the volume.
pub async fn sync(engine: &Engine, target: &Target<'_>, from: &Path) -> Result<LoginOutcome> {
    let runtime = target.spec.runtime.require_login()?;
    let mut files = host_login(runtime.runtime(), from)?;
    if runtime == Runtime::Codex {
        // The copy must stay a file login in the container, whatever the host uses.
        let current = files
            .iter()
            .find(|(n, _)| n == codex::CONFIG_FILE)
            .map(|(_, b)| String::from_utf8_lossy(b).into_owned());
        if let Some(text) = crate::credentials::codex::with_file_store(current.as_deref()) {
            files.retain(|(n, _)| n != codex::CONFIG_FILE);
            files.insert(0, (codex::CONFIG_FILE.to_string(), text.into_bytes()));
        }
    }
    let created_volume = volumes::ensure(engine, target.spec).await? == volumes::Ensured::Created;
    let staging = target.staging();
    let volume = target.spec.name.clone();
    stage(engine, target, &staging, &files).await?;

    // Read the staged copy back: a short or failed upload must never be put in place.
    let check = async {
        let scratch = Scratch::create(engine, &[target.volume_mount()]).await?;
        let read = read_files(engine, &scratch.id, &staging, runtime).await;
        scratch.remove(engine).await?;
        let read = read?;
        if read != files {
            return Err(Error::LoginFailed {
                what: "the copy in the volume does not match the source".into(),
                volume: volume.clone(),
                hint: Some("run the sync again".into()),
            });
        }
        Ok(())
    }
    .await;
    if let Err(e) = check {
        let _ = run_apply(engine, target, &staging, false, true).await;
        return Err(e);
    }
    run_apply(engine, target, &staging, true, false).await?;
    Ok(LoginOutcome {
        volume,
        created_volume,
        files: files.into_iter().map(|(n, _)| n).collect(),
        warnings: vec![format!(
            "{} and the volume now share one refresh token: whichever refreshes second revokes both. Stop using the login in {} (log it out, or log in again on the host), and never sync one login into several volumes.",
            from.display(),
            from.display()
        )],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_login_refuses_a_keychain_only_claude_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("settings.json"), "{}").unwrap();
        let err = host_login(Runtime::Claude, dir.path()).unwrap_err();
        assert_eq!(err.exit(), crate::exit::Exit::LoginFailed);
        assert!(err.to_string().contains("Keychain"), "{err}");
    }

    #[test]
    fn host_login_refuses_a_keyring_codex_dir() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.toml"),
            "cli_auth_credentials_store = \"keyring\"\n",
        )
        .unwrap();
        let err = host_login(Runtime::Codex, dir.path()).unwrap_err();
        assert!(err.to_string().contains("keyring"), "{err}");
    }

    #[test]
    fn host_login_takes_only_login_files_and_finds_claude_json_beside_the_dir() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".claude");
        std::fs::create_dir_all(dir.join("projects/x")).unwrap();
        std::fs::write(dir.join("projects/x/s.jsonl"), "{}").unwrap();
        std::fs::write(
            dir.join(".credentials.json"),
            r#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":4102444800000,"scopes":["user:inference"]}}"#,
        )
        .unwrap();
        std::fs::write(home.path().join(".claude.json"), r#"{"hasCompletedOnboarding":true}"#).unwrap();
        let files = host_login(Runtime::Claude, &dir).unwrap();
        let names: Vec<&str> = files.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, [".claude.json", ".credentials.json"]);
    }

    #[test]
    fn host_login_never_copies_a_link_or_waits_on_a_fifo_beside_the_dir() {
        let home = tempfile::tempdir().unwrap();
        let dir = home.path().join(".claude");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join(".credentials.json"),
            r#"{"claudeAiOauth":{"accessToken":"a","refreshToken":"r","expiresAt":4102444800000,"scopes":["user:inference"]}}"#,
        )
        .unwrap();
        let host_file = home.path().join("id_rsa");
        std::fs::write(&host_file, "PRIVATE").unwrap();
        std::os::unix::fs::symlink(&host_file, home.path().join(".claude.json")).unwrap();
        let err = host_login(Runtime::Claude, &dir).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_file(home.path().join(".claude.json")).unwrap();
        nix::unistd::mkfifo(&home.path().join(".claude.json"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = host_login(Runtime::Claude, &dir).unwrap_err();
        assert!(err.to_string().contains("FIFO"), "{err}");
    }

    #[test]
    fn host_login_refuses_an_expired_login_without_refresh() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(".credentials.json"),
            r#"{"claudeAiOauth":{"accessToken":"a","expiresAt":1000}}"#,
        )
        .unwrap();
        assert!(host_login(Runtime::Claude, dir.path()).is_err());
    }

    #[test]
    fn codex_logs_in_with_the_device_flow_by_default() {
        assert_eq!(
            default_login_command(Runtime::Codex),
            ["codex", "login", "--device-auth"]
        );
        assert_eq!(default_login_command(Runtime::Claude), ["claude", "auth", "login"]);
    }
}
