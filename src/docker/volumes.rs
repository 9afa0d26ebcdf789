//! Auth volumes: one named volume per runtime and account, labelled so moonauth knows
//! which ones are its own. Creating is idempotent; removing touches only labelled,
//! unused volumes.

use std::collections::HashMap;

use bollard::models::{Volume, VolumeCreateRequest};
use bollard::query_parameters::{ListContainersOptionsBuilder, ListVolumesOptionsBuilder, RemoveVolumeOptionsBuilder};
use serde::Serialize;

use super::Engine;
use crate::agents::{LoginRuntime, Runtime};
use crate::config::Config;
use crate::error::{Error, Result};

/// Label saying moonauth created the volume.
pub const LABEL_MANAGED_BY: &str = "io.moonauth.managed-by";
/// Label holding the runtime (`claude` / `codex`).
pub const LABEL_RUNTIME: &str = "io.moonauth.runtime";
/// Label holding the account name (`default` for the configured volume).
pub const LABEL_ACCOUNT: &str = "io.moonauth.account";
/// The name of the account whose volume is `CLAUDE_VOLUME_NAME` / `CODEX_VOLUME_NAME`.
pub use crate::agents::DEFAULT_ACCOUNT;

/// A volume moonauth expects to exist: which runtime and account it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VolumeSpec {
    pub name: String,
    pub runtime: Runtime,
    pub account: String,
}

pub use crate::agents::validate_account;

/// Checks a volume name against Docker's own rule (`[a-zA-Z0-9][a-zA-Z0-9_.-]+`) before
/// it reaches the Engine API: the name becomes a URL path segment, so `../volumes/x` or
/// `x?x=1` would otherwise address another volume. `input` names where it came from.
pub fn validate_name(input: &'static str, name: &str) -> Result<()> {
    if crate::config::is_volume_name(name) {
        Ok(())
    } else {
        Err(Error::InvalidFlag {
            flag: input,
            value: name.to_string(),
            reason: crate::config::VOLUME_NAME_RULE.into(),
        })
    }
}

/// The volume of an account, derived from the configured volume name: its `_volume`
/// suffix, if any, is replaced by `_<account>` (else `_<account>` is appended). The
/// defaults keep their old names (`claude_auth_volume` → `claude_auth_work`), and a
/// configured `fleet1_claude` gives `fleet1_claude_work`, so two deployments on one
/// engine keep their accounts apart.
pub fn account_volume_name(configured: &str, account: &str) -> String {
    let base = configured
        .strip_suffix("_volume")
        .filter(|b| !b.is_empty())
        .unwrap_or(configured);
    format!("{base}_{account}")
}

/// The volume of `runtime` for `account` (the configured one for the default account,
/// [`account_volume_name`] otherwise).
pub fn spec(config: &Config, runtime: Runtime, account: Option<&str>) -> Result<VolumeSpec> {
    let settings = config.runtime(runtime).ok_or_else(|| Error::InvalidFlag {
        flag: "RUNTIME",
        value: runtime.to_string(),
        reason: "allowed values: claude, codex".into(),
    })?;
    match account {
        None | Some(DEFAULT_ACCOUNT) => {
            // Config checks CLAUDE_VOLUME_NAME / CODEX_VOLUME_NAME when it reads them;
            // a library caller may build a Config by hand, so check again here.
            validate_name(
                match settings.runtime {
                    LoginRuntime::Claude => "CLAUDE_VOLUME_NAME",
                    LoginRuntime::Codex => "CODEX_VOLUME_NAME",
                },
                &settings.volume_name.value,
            )?;
            Ok(VolumeSpec {
                name: settings.volume_name.value.clone(),
                runtime,
                account: DEFAULT_ACCOUNT.into(),
            })
        }
        Some(a) => {
            validate_account(a)?;
            let name = account_volume_name(&settings.volume_name.value, a);
            // The account rule implies the volume rule; checked anyway, as every name is.
            validate_name("--account", &name)?;
            Ok(VolumeSpec {
                name,
                runtime,
                account: a.into(),
            })
        }
    }
}

/// What `ensure` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Ensured {
    Created,
    /// It existed with moonauth's labels.
    Existed,
    /// It existed without moonauth's labels (created by hand or by compose); left as it is.
    ExistedUnlabelled,
}

fn labels(spec: &VolumeSpec) -> HashMap<String, String> {
    HashMap::from([
        (LABEL_MANAGED_BY.to_string(), "moonauth".to_string()),
        (LABEL_RUNTIME.to_string(), spec.runtime.to_string()),
        (LABEL_ACCOUNT.to_string(), spec.account.clone()),
    ])
}

/// Whether a volume carries moonauth's label.
pub fn is_managed(v: &Volume) -> bool {
    v.labels.get(LABEL_MANAGED_BY).map(String::as_str) == Some("moonauth")
}

/// Inspects a volume; `None` when it does not exist.
pub async fn inspect(engine: &Engine, name: &str) -> Result<Option<Volume>> {
    validate_name("VOLUME", name)?;
    engine
        .call_opt(format!("inspect volume {name}"), engine.client().inspect_volume(name))
        .await
}

/// Creates the volume with moonauth's labels unless it exists. Idempotent.
pub async fn ensure(engine: &Engine, spec: &VolumeSpec) -> Result<Ensured> {
    validate_name("VOLUME", &spec.name)?;
    if let Some(v) = inspect(engine, &spec.name).await? {
        return Ok(if is_managed(&v) {
            Ensured::Existed
        } else {
            Ensured::ExistedUnlabelled
        });
    }
    let request = VolumeCreateRequest {
        name: Some(spec.name.clone()),
        labels: Some(labels(spec)),
        ..Default::default()
    };
    engine
        .call(
            format!("create volume {}", spec.name),
            engine.client().create_volume(request),
        )
        .await?;
    tracing::info!(volume = %spec.name, "created volume");
    Ok(Ensured::Created)
}

/// Every volume that carries moonauth's label.
pub async fn list_managed(engine: &Engine) -> Result<Vec<Volume>> {
    let filters = HashMap::from([("label", vec![format!("{LABEL_MANAGED_BY}=moonauth")])]);
    let options = ListVolumesOptionsBuilder::default().filters(&filters).build();
    let list = engine
        .call("list volumes", engine.client().list_volumes(Some(options)))
        .await?;
    let mut volumes = list.volumes.unwrap_or_default();
    volumes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(volumes)
}

/// Names of the containers (running or not) that mount the volume, except moonauth's own
/// never-started archive containers (`status`/`volumes ls` hold one for a moment).
pub async fn users(engine: &Engine, name: &str) -> Result<Vec<String>> {
    let filters = HashMap::from([("volume", vec![name.to_string()])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let containers = engine
        .call(
            format!("list containers using {name}"),
            engine.client().list_containers(Some(options)),
        )
        .await?;
    Ok(containers
        .into_iter()
        .filter(|c| {
            let scratch = c.image.as_deref() == Some(super::archive::EMPTY_IMAGE)
                && c.labels
                    .as_ref()
                    .and_then(|l| l.get(LABEL_MANAGED_BY))
                    .map(String::as_str)
                    == Some("moonauth");
            !scratch
        })
        .map(|c| {
            c.names
                .and_then(|n| n.first().map(|s| s.trim_start_matches('/').to_string()))
                .or(c.id.map(|id| id.chars().take(12).collect()))
                .unwrap_or_default()
        })
        .collect())
}

/// Removes a moonauth volume: refuses a bad name and anything without `force` (usage
/// errors, before the engine is asked anything), then unlabelled volumes and volumes in use.
pub async fn remove(engine: &Engine, name: &str, force: bool) -> Result<bool> {
    validate_name("VOLUME", name)?;
    if !force {
        return Err(Error::NeedsForce {
            action: format!("removing volume {name} (and the login in it)"),
        });
    }
    let Some(volume) = inspect(engine, name).await? else {
        return Ok(false);
    };
    if !is_managed(&volume) {
        return Err(Error::VolumeNotManaged {
            volume: name.to_string(),
            action: "remove",
        });
    }
    let users = users(engine, name).await?;
    if !users.is_empty() {
        return Err(Error::VolumeInUse {
            volume: name.to_string(),
            containers: users.join(", "),
        });
    }
    // A moonauth archive container may hold the volume for a moment (see `users`): the
    // engine answers 409 until it is gone, so retry briefly before giving up.
    let action = format!("remove volume {name}");
    for attempt in 0.. {
        let options = RemoveVolumeOptionsBuilder::default().force(false).build();
        match engine
            .timed(&action, engine.client().remove_volume(name, Some(options)))
            .await?
        {
            Ok(()) => break,
            Err(e) if super::status_of(&e) == Some(409) && attempt < 20 => {
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
            Err(e) => return Err(engine.error(action, &e)),
        }
    }
    Ok(true)
}

/// What `volumes ensure` did to each volume.
#[derive(Debug, Serialize)]
pub struct EnsureReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub volumes: Vec<EnsuredVolume>,
}

impl EnsureReport {
    pub fn new(volumes: Vec<EnsuredVolume>) -> EnsureReport {
        EnsureReport {
            schema: "moonauth.volumes-ensure.v1",
            ok: true,
            exit_code: 0,
            volumes,
        }
    }
}

/// What `volumes rm` did to each volume (it stops at the first error, which is the exit).
#[derive(Debug, Serialize)]
pub struct RemoveReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    pub volumes: Vec<RemovedVolume>,
}

impl RemoveReport {
    pub fn new(volumes: Vec<RemovedVolume>) -> RemoveReport {
        RemoveReport {
            schema: "moonauth.volumes-rm.v1",
            ok: true,
            exit_code: 0,
            volumes,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct RemovedVolume {
    pub volume: String,
    /// `removed`, or `absent` when there was no such volume.
    pub outcome: Removed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Removed {
    Removed,
    Absent,
}

#[derive(Debug, Serialize)]
pub struct EnsuredVolume {
    #[serde(flatten)]
    pub spec: VolumeSpec,
    pub outcome: Ensured,
}

#[cfg(test)]
mod tests {
    use super::account_volume_name;

    #[test]
    fn account_volumes_derive_from_the_configured_name() {
        assert_eq!(account_volume_name("claude_auth_volume", "work"), "claude_auth_work");
        assert_eq!(account_volume_name("codex_auth_volume", "b"), "codex_auth_b");
        assert_eq!(account_volume_name("fleet1_claude", "work"), "fleet1_claude_work");
        assert_eq!(account_volume_name("_volume", "work"), "_volume_work");
    }
}
