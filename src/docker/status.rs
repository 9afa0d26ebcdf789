//! What each auth volume holds, read straight from the volume through the archive
//! API (no container is started): exists or not, labels, and the login verdict.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::Serialize;

use crate::agents::account_login_command as login_command;
use crate::agents::codex;
use crate::agents::Runtime;
use crate::checks::{Check, CheckStatus};
use crate::config::Config;
use crate::credentials::{self, LoginClass, LoginReport};
use crate::docker::archive::{self, Scratch, VolumeMount};
use crate::docker::volumes::{self, VolumeSpec, LABEL_ACCOUNT, LABEL_RUNTIME};
use crate::docker::Engine;
use crate::error::Result;
use crate::exit::Exit;

/// The fix of a shared login whose access token expired but can be refreshed.
pub fn renew_command(runtime: Runtime, account: &str) -> String {
    let which = if account == crate::agents::DEFAULT_ACCOUNT {
        format!("moonauth renew {runtime}")
    } else {
        format!("moonauth renew --account {account}")
    };
    format!(
        "run `{which}` where the volume is mounted (or keep the `moonauth renew --watch` service running); workers sharing this login must not refresh it themselves (docs/shared-logins.md)"
    )
}

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
    /// What to run when it is missing or unusable: the fix of [`VolumeStatus::check`],
    /// kept as its own field so the JSON stays as it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl VolumeStatus {
    /// Exists and holds a usable login.
    pub fn ok(&self) -> bool {
        !self.check().failed()
    }

    /// What is wrong with the volume and how to fix it, as a `volume` [`Check`]: it fails
    /// when the volume does not exist or its login is not usable, and the fix is the
    /// login command for its account (none when the login was not read); it warns, with
    /// `moonauth renew` as the fix, when the access token expired but can be refreshed.
    pub fn check(&self) -> Check {
        let fix = || login_command(self.runtime, &self.account);
        let check = |status, detail| Check::new(self.runtime, "volume", status, detail);
        match (&self.login, self.exists) {
            (_, false) => check(CheckStatus::Ok, "volume does not exist".into()).fail(Exit::LoginUnusable, fix()),
            (None, true) => Check {
                exit: Exit::LoginUnusable,
                ..check(CheckStatus::Fail, "login not read".into())
            },
            (Some(l), true) => {
                let detail = format!("{} - {}", l.inspection.class.as_str(), l.inspection.detail);
                if l.usable && l.inspection.class == LoginClass::OauthExpiredRefreshable {
                    // Workers sharing a volume must not refresh it themselves (two refreshes
                    // of one token revoke it): the renew service does, so say so.
                    check(CheckStatus::Ok, detail).warn(renew_command(self.runtime, &self.account))
                } else if l.usable {
                    check(CheckStatus::Ok, detail)
                } else {
                    check(CheckStatus::Ok, detail).fail(Exit::LoginUnusable, fix())
                }
            }
        }
    }
}

/// The default volume of each runtime, the named accounts, and every volume moonauth
/// labelled for a named account.
pub async fn configured_specs(
    engine: &Engine,
    config: &Config,
    runtimes: &[Runtime],
    accounts: &[String],
) -> Result<Vec<VolumeSpec>> {
    let mut specs = Vec::new();
    for &runtime in runtimes {
        specs.push(volumes::spec(config, runtime, None)?);
        for account in accounts {
            specs.push(volumes::spec(config, runtime, Some(account))?);
        }
    }
    for v in volumes::list_managed(engine).await? {
        let runtime = v
            .labels
            .get(LABEL_RUNTIME)
            .and_then(|r| crate::agents::parse_login_runtime(r).ok());
        let account = v
            .labels
            .get(LABEL_ACCOUNT)
            .cloned()
            .unwrap_or_else(|| volumes::DEFAULT_ACCOUNT.into());
        // Other deployments' default volumes are theirs to report; account volumes are this fleet's.
        if account == volumes::DEFAULT_ACCOUNT {
            continue;
        }
        if let Some(runtime) = runtime.filter(|r| runtimes.contains(r)) {
            if !specs.iter().any(|s| s.name == v.name) {
                specs.push(VolumeSpec {
                    name: v.name.clone(),
                    runtime,
                    account,
                });
            }
        }
    }
    Ok(specs)
}

/// What `volumes ls` lists: every volume carrying moonauth's managed-by label (any
/// runtime, any account, this deployment's or another's; runtime and account from its
/// labels), then each runtime's configured volume that is not among them (it may not
/// exist yet; [`collect`] marks it missing).
pub async fn listed_specs(engine: &Engine, config: &Config, runtimes: &[Runtime]) -> Result<Vec<VolumeSpec>> {
    let mut specs = Vec::new();
    for v in volumes::list_managed(engine).await? {
        let label = v.labels.get(LABEL_RUNTIME);
        let Some(runtime) = label.and_then(|r| crate::agents::parse_login_runtime(r).ok()) else {
            tracing::warn!(
                "volume {} carries moonauth's label but no known runtime label ({LABEL_RUNTIME}={}); not listed",
                v.name,
                label.map_or("unset", String::as_str)
            );
            continue;
        };
        let account = v
            .labels
            .get(LABEL_ACCOUNT)
            .cloned()
            .unwrap_or_else(|| volumes::DEFAULT_ACCOUNT.into());
        specs.push(VolumeSpec {
            name: v.name.clone(),
            runtime,
            account,
        });
    }
    for &runtime in runtimes {
        let configured = volumes::spec(config, runtime, None)?;
        if !specs.iter().any(|s| s.name == configured.name) {
            specs.push(configured);
        }
    }
    Ok(specs)
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
            fix: None,
        });
    }
    if present.is_empty() {
        return Ok(with_fixes(out));
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
    Ok(with_fixes(out))
}

/// Fills each volume's `fix` from its [`Check`].
fn with_fixes(mut volumes: Vec<VolumeStatus>) -> Vec<VolumeStatus> {
    for v in &mut volumes {
        v.fix = v.check().fix;
    }
    volumes
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
            // Claude keeps who the login belongs to in .claude.json (oauthAccount), beside
            // the credentials when CLAUDE_CONFIG_DIR is the volume; read under the settings cap.
            let account = format!("{}/{}", mount.path, crate::agents::claude::ACCOUNT_FILE);
            let read_account = async {
                if runtime == Runtime::Claude {
                    archive::read_file_max(engine, container, &account, credentials::MAX_CONFIG_BYTES).await
                } else {
                    Ok(Ok(None))
                }
            };
            let (login, state, account) = futures_util::future::join3(
                archive::read_file(engine, container, &path),
                archive::read_file(engine, container, &record),
                read_account,
            )
            .await;
            // An unreadable or refused .claude.json only means no identity.
            let account = match account? {
                Ok(Some(entry)) => Some(entry.bytes),
                _ => None,
            };
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
            let inspection = credentials::claude::with_account(inspection, account.as_deref());
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
    /// The fleet's state database, when `MOONAUTH_STATE_URL` is set (the `fleet-state`
    /// check, URL masked); a warning when unreachable, so it does not change the exit code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fleet: Option<crate::checks::Check>,
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
            fleet: None,
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

/// The report of `volumes ls`: the volumes as `status` sees them, as a table. Listing
/// succeeds whatever the logins hold, so `ok`/`exit_code` say so (exit 0); each
/// volume's own `login.usable` and `fix` say what needs doing.
#[derive(Debug, Serialize)]
pub struct VolumeList {
    pub schema: &'static str,
    pub docker_host: String,
    pub api_version: String,
    pub ok: bool,
    pub exit_code: u8,
    pub volumes: Vec<VolumeStatus>,
}

impl VolumeList {
    pub fn new(engine: &Engine, volumes: Vec<VolumeStatus>) -> VolumeList {
        VolumeList {
            schema: "moonauth.volumes-ls.v1",
            docker_host: engine.host().to_string(),
            api_version: engine.api_version().to_string(),
            ok: true,
            exit_code: Exit::Ok.code(),
            volumes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credentials::Inspection;

    fn volume(exists: bool, usable: Option<bool>) -> VolumeStatus {
        VolumeStatus {
            volume: "moonauth-claude-work".into(),
            runtime: Runtime::Claude,
            account: "work".into(),
            exists,
            managed: true,
            login: usable.map(|usable| LoginReport {
                runtime: Runtime::Claude,
                dir: "/home/app/.claude".into(),
                file: "/home/app/.claude/.credentials.json".into(),
                inspection: Inspection::new(LoginClass::Missing, "no login".into()),
                usable,
            }),
            fix: None,
        }
    }

    #[test]
    fn a_volume_needs_a_fix_when_missing_or_unusable_and_only_then() {
        let login = login_command(Runtime::Claude, "work");
        for (v, fix) in [
            (volume(false, None), Some(login.clone())),
            (volume(true, Some(false)), Some(login.clone())),
            (volume(true, Some(true)), None),
            (volume(true, None), None),
        ] {
            let check = v.check();
            assert_eq!(check.fix, fix, "{v:?}");
            assert_eq!(
                check.failed(),
                !(v.exists && v.login.as_ref().is_some_and(|l| l.usable))
            );
            assert_eq!(with_fixes(vec![v])[0].fix, fix);
        }
    }

    #[test]
    fn an_expired_refreshable_shared_login_warns_and_names_moonauth_renew() {
        let mut v = volume(true, Some(true));
        v.account = crate::agents::DEFAULT_ACCOUNT.into();
        if let Some(l) = v.login.as_mut() {
            l.inspection = Inspection::new(LoginClass::OauthExpiredRefreshable, "expired".into());
        }
        let check = v.check();
        assert_eq!(check.status, CheckStatus::Warn);
        assert!(!check.failed(), "a renew service refreshes it: not a failure");
        let fix = check.fix.unwrap_or_default();
        assert!(fix.contains("`moonauth renew claude`"), "{fix}");
        v.account = "work".into();
        assert!(v
            .check()
            .fix
            .unwrap_or_default()
            .contains("`moonauth renew --account work`"));
    }
}
