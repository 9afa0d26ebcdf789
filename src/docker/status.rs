//! What each auth volume holds, read straight from the volume through the archive
//! API (no container is started): exists or not, labels, and the login verdict.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::agents::account_login_command as login_command;
use crate::agents::codex;
use crate::agents::Runtime;
use crate::config::Config;
use crate::credentials::{self, LoginReport};
use crate::docker::archive::{self, Scratch, VolumeMount};
use crate::docker::volumes::{self, VolumeSpec};
use crate::docker::Engine;
use crate::error::Result;
use crate::exit::Exit;

/// One volume's state.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeStatus {
    pub volume: String,
    pub runtime: Runtime,
    pub account: String,
    pub exists: bool,
    /// Carries moonauth's labels.
    pub managed: bool,
    /// The login it holds, as a worker that mounts it at its login directory sees it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub login: Option<LoginReport>,
    /// What to run when it is missing or unusable.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl VolumeStatus {
    /// Exists and holds a usable login.
    pub fn ok(&self) -> bool {
        self.exists && self.login.as_ref().is_some_and(|l| l.usable)
    }
}

/// Reads the state of every volume in `specs`, with one never-started container.
pub async fn collect(
    engine: &Engine,
    config: &Config,
    specs: &[VolumeSpec],
    now: SystemTime,
) -> Result<Vec<VolumeStatus>> {
    // Inspect every volume and make sure the empty image exists, all at once.
    let inspections = futures_util::future::join_all(specs.iter().map(|s| volumes::inspect(engine, &s.name)));
    let (inspections, image) = futures_util::future::join(inspections, archive::ensure_empty_image(engine)).await;
    image?;
    let mut out = Vec::with_capacity(specs.len());
    let mut present = Vec::new();
    for (spec, volume) in specs.iter().zip(inspections) {
        let volume = volume?;
        let exists = volume.is_some();
        let managed = volume.as_ref().is_some_and(volumes::is_managed);
        if exists {
            present.push(out.len());
        }
        out.push(VolumeStatus {
            volume: spec.name.clone(),
            runtime: spec.runtime,
            account: spec.account.clone(),
            exists,
            managed,
            login: None,
            fix: (!exists).then(|| login_command(spec.runtime, &spec.account)),
        });
    }
    if present.is_empty() {
        return Ok(out);
    }
    let mounts: Vec<VolumeMount> = present
        .iter()
        .enumerate()
        .map(|(i, &idx)| VolumeMount {
            volume: out[idx].volume.clone(),
            path: format!("/moonauth/volume{i}"),
            read_only: true,
        })
        .collect();
    let scratch = Scratch::create(engine, &mounts).await?;
    let result = read_logins(engine, config, &scratch.id, &mounts, &present, &mut out, now).await;
    scratch.remove(engine).await?;
    result?;
    Ok(out)
}

async fn read_logins(
    engine: &Engine,
    config: &Config,
    container: &str,
    mounts: &[VolumeMount],
    present: &[usize],
    out: &mut [VolumeStatus],
    now: SystemTime,
) -> Result<()> {
    // Every volume's login file at once: each read is a round trip to the engine.
    let reads = mounts.iter().zip(present).map(|(mount, &idx)| {
        let runtime = out[idx].runtime;
        async move {
            let runtime = runtime.require_login()?;
            let file = credentials::login_file(runtime, Path::new(""));
            let path = format!("{}/{}", mount.path, file.display());
            let mut blocked = None;
            // The login and moonauth's refresh record, read at once (one round trip).
            let record = format!("{}/{}", mount.path, crate::renew::STATE_FILE);
            let (login, state) = futures_util::future::join(
                archive::read_file(engine, container, &path),
                archive::read_file(engine, container, &record),
            )
            .await;
            let state = state?;
            let inspection = match login? {
                Ok(Some(entry)) => {
                    let inspection = credentials::classify(runtime, &entry.bytes, now, config.expiry_lead.value);
                    if inspection.class.usable() && inspection.class.is_oauth() {
                        // moonauth's refresh may have found this login dead.
                        if let Ok(Some(state)) = &state {
                            blocked = crate::renew::relogin_needed_from(&state.bytes, &entry.bytes);
                        }
                    }
                    inspection
                }
                Ok(None) => {
                    let config_toml = if runtime == Runtime::Codex {
                        let p = format!("{}/{}", mount.path, codex::CONFIG_FILE);
                        match archive::read_file(engine, container, &p).await? {
                            Ok(Some(e)) => Some(String::from_utf8_lossy(&e.bytes).into_owned()),
                            _ => None,
                        }
                    } else {
                        None
                    };
                    credentials::missing_login(runtime, config_toml.as_deref())
                }
                Err(reason) => credentials::Inspection::new(credentials::LoginClass::Refused, reason),
            };
            Ok::<_, crate::error::Error>((idx, inspection, blocked))
        }
    });
    for result in futures_util::future::join_all(reads).await {
        let (idx, mut inspection, blocked) = result?;
        let status = &mut out[idx];
        let runtime = status.runtime;
        let login_dir: PathBuf = config
            .runtime(runtime)
            .map(|s| s.login_dir.value.clone())
            .unwrap_or_default();
        let mut usable = inspection.class.usable();
        if let Some(why) = blocked {
            usable = false;
            inspection.detail = format!("{}; {why}", inspection.detail);
        }
        if !usable {
            status.fix = Some(crate::agents::account_login_command(runtime, &status.account));
        }
        status.login = Some(LoginReport {
            runtime,
            file: credentials::login_file(runtime.require_login()?, &login_dir),
            dir: login_dir,
            inspection,
            usable,
        });
    }
    Ok(())
}

/// The report of `moonauth status`.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub schema: &'static str,
    pub docker_host: String,
    pub api_version: String,
    pub ok: bool,
    pub exit_code: u8,
    pub volumes: Vec<VolumeStatus>,
}

impl StatusReport {
    pub fn new(engine: &Engine, volumes: Vec<VolumeStatus>) -> StatusReport {
        let exit = if volumes.iter().all(VolumeStatus::ok) {
            Exit::Ok
        } else {
            Exit::LoginUnusable
        };
        StatusReport {
            schema: "moonauth.status.v1",
            docker_host: engine.host().to_string(),
            api_version: engine.api_version().to_string(),
            ok: exit == Exit::Ok,
            exit_code: exit.code(),
            volumes,
        }
    }

    pub fn exit(&self) -> Exit {
        if self.ok {
            Exit::Ok
        } else {
            Exit::LoginUnusable
        }
    }
}
