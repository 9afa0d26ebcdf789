//! `moonauth doctor`: every part of the setup checked at once, as one list of
//! [`Check`]s (the type preflight and `status` use), collected before anything is
//! printed (`mise doctor`). It knows what to check and in which order; rendering is
//! `output`'s. A check that cannot run because the engine is unreachable is still
//! listed, as a warning that says why it was not checked.
//!
//! Token endpoints are only contacted with `--network`: a HEAD request to the URL's
//! origin with a short timeout, no path, no body, no credential.

use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use crate::agents::Runtime;
use crate::checks::{Check, CheckStatus};
use crate::config::Config;
use crate::docker::archive::EMPTY_IMAGE;
use crate::docker::{status, Engine};
use crate::error::{Error, Result};
use crate::exit::Exit;

/// Clock skew between this host and the engine above which `clock` warns: login expiry
/// is judged on this host's clock, containers run on the engine's.
pub const CLOCK_SKEW_WARN: Duration = Duration::from_secs(180);

/// How long `--network` waits for a token endpoint's host.
pub const NETWORK_TIMEOUT: Duration = Duration::from_secs(5);

/// What to check and against what.
#[derive(Debug, Clone)]
pub struct Options {
    /// Runtimes whose volumes to check.
    pub runtimes: Vec<Runtime>,
    /// The clock login verdicts are judged at (`MOONAUTH_NOW` may pin it).
    pub now: SystemTime,
    /// This host's real clock, compared with the engine's.
    pub system_now: SystemTime,
    /// Try to reach the token endpoints (`--network`).
    pub network: bool,
}

/// The report of `moonauth doctor` (schema in docs/doctor.md).
#[derive(Debug, Clone, Serialize)]
pub struct DoctorReport {
    pub schema: &'static str,
    pub ok: bool,
    pub exit_code: u8,
    /// Whether the token endpoints were contacted (`--network`).
    pub network: bool,
    /// The token endpoints' origins, contacted only with `--network`.
    pub token_endpoints: Vec<String>,
    pub checks: Vec<Check>,
}

impl DoctorReport {
    fn new(checks: Vec<Check>, network: bool, token_endpoints: Vec<String>) -> DoctorReport {
        let exit = checks.iter().find(|c| c.failed()).map_or(Exit::Ok, |c| c.exit);
        DoctorReport {
            schema: "moonauth.doctor.v1",
            ok: exit == Exit::Ok,
            exit_code: exit.code(),
            network,
            token_endpoints,
            checks,
        }
    }

    /// 0 when no check failed, else the exit status of the first failure.
    pub fn exit(&self) -> Exit {
        self.checks.iter().find(|c| c.failed()).map_or(Exit::Ok, |c| c.exit)
    }
}

/// Runs every check and returns them all; only a failure to start the async runtime is
/// an error (everything else is a check).
pub fn collect(config: &Config, options: &Options) -> Result<DoctorReport> {
    let rt = super::runtime()?;
    let mut checks = rt.block_on(engine_checks(config, options));
    drop(rt);
    checks.push(account_store(config));
    // Only with MOONAUTH_STATE_URL; the database client runs outside the engine's runtime.
    checks.extend(crate::checks::fleet::check(config));
    let endpoints = token_origins(config);
    if options.network {
        checks.extend(endpoints.iter().map(|origin| token_endpoint(origin, NETWORK_TIMEOUT)));
    }
    Ok(DoctorReport::new(checks, options.network, endpoints))
}

/// A check about the whole setup (no runtime).
fn check(name: &'static str, status: CheckStatus, detail: String) -> Check {
    Check::general(name, status, detail)
}

/// A failed check whose detail and fix come from `error`.
fn failed(name: &'static str, what: &str, error: &Error) -> Check {
    let fix = error
        .hint()
        .unwrap_or_else(|| "run it again with -v for more detail".into());
    let detail = if what.is_empty() {
        error.to_string()
    } else {
        format!("{what}: {error}")
    };
    check(name, CheckStatus::Ok, detail).fail(error.exit(), fix)
}

async fn engine_checks(config: &Config, options: &Options) -> Vec<Check> {
    let engine = match Engine::connect(&config.docker).await {
        Ok(engine) => engine,
        Err(e) => {
            let not_checked = |name| {
                check(
                    name,
                    CheckStatus::Ok,
                    "not checked: the Docker engine is unreachable".into(),
                )
                .warn("fix the engine check first")
            };
            return vec![
                failed("engine", "", &e),
                not_checked("clock"),
                not_checked("empty-image"),
                not_checked("worker-image"),
                not_checked("volumes"),
            ];
        }
    };
    let info = engine.call("read the engine's /info", engine.client().info()).await;
    let mut checks = Vec::new();
    match &info {
        Ok(info) => {
            let version = info.server_version.as_deref().unwrap_or("unknown version");
            checks.push(check(
                "engine",
                CheckStatus::Ok,
                format!(
                    "{} answers: Docker {version}, API {} (negotiated)",
                    engine.host(),
                    engine.api_version()
                ),
            ));
            checks.push(match info.system_time.as_deref() {
                Some(t) => clock(options.system_now, t),
                None => check("clock", CheckStatus::Ok, "the engine did not report its time".into())
                    .warn("compare `date -u` here and on the engine's host by hand"),
            });
        }
        Err(e) => {
            checks.push(failed(
                "engine",
                "the engine answered the version check but not /info",
                e,
            ));
            checks.push(
                check("clock", CheckStatus::Ok, "not checked: no /info from the engine".into())
                    .warn("fix the engine check first"),
            );
        }
    }
    checks.push(empty_image(&engine).await);
    checks.push(worker_image(&engine, config).await);
    checks.extend(volumes(&engine, config, options).await);
    checks
}

/// Compares this host's clock with the engine's `SystemTime` (RFC 3339 with nanoseconds).
pub fn clock(system_now: SystemTime, engine_time: &str) -> Check {
    let engine_now = match engine_time.parse::<jiff::Timestamp>() {
        Ok(t) => SystemTime::from(t),
        Err(e) => {
            return check(
                "clock",
                CheckStatus::Ok,
                format!("the engine's time {engine_time:?} does not parse: {e}"),
            )
            .warn("compare `date -u` here and on the engine's host by hand")
        }
    };
    let (skew, direction) = match system_now.duration_since(engine_now) {
        Ok(d) => (d, "ahead of"),
        Err(e) => (e.duration(), "behind"),
    };
    let skew_text = format!("{}.{:03}s", skew.as_secs(), skew.subsec_millis());
    if skew > CLOCK_SKEW_WARN {
        check(
            "clock",
            CheckStatus::Ok,
            format!(
                "this host's clock is {} {direction} the engine's; login expiry is judged on this clock",
                crate::time::human_duration(skew)
            ),
        )
        .warn("sync the clocks (timedatectl set-ntp true, or chrony/ntpd) on this host and the engine's host")
    } else {
        check("clock", CheckStatus::Ok, format!("within {skew_text} of the engine's"))
    }
}

/// The image containers for archive reads are made from. moonauth imports it from an
/// empty tar itself (no pull), so its absence is no failure.
async fn empty_image(engine: &Engine) -> Check {
    let found = engine
        .call_opt("inspect the empty image", engine.client().inspect_image(EMPTY_IMAGE))
        .await;
    match found {
        Ok(Some(_)) => check("empty-image", CheckStatus::Ok, format!("{EMPTY_IMAGE} present")),
        Ok(None) => check(
            "empty-image",
            CheckStatus::Ok,
            format!("{EMPTY_IMAGE} not present yet; moonauth imports it from an empty archive when it first needs it (no pull)"),
        ),
        Err(e) => failed("empty-image", &format!("cannot inspect {EMPTY_IMAGE}"), &e),
    }
}

/// The worker image `moonauth login` runs in (`MOONAUTH_IMAGE`).
async fn worker_image(engine: &Engine, config: &Config) -> Check {
    let Some(image) = &config.docker.image else {
        return check(
            "worker-image",
            CheckStatus::Ok,
            "MOONAUTH_IMAGE is not set; `moonauth login` needs it (or --image)".into(),
        )
        .warn(Error::NoImage.hint().unwrap_or_default());
    };
    let name = &image.value;
    let found = engine
        .call_opt(format!("inspect image {name}"), engine.client().inspect_image(name))
        .await;
    match found {
        Ok(Some(_)) => check(
            "worker-image",
            CheckStatus::Ok,
            format!("{name} present ({})", image.source),
        ),
        Ok(None) => {
            let e = Error::ImageMissing { image: name.clone() };
            failed("worker-image", &format!("MOONAUTH_IMAGE ({})", image.source), &e)
        }
        Err(e) => failed("worker-image", &format!("cannot inspect {name}"), &e),
    }
}

/// One check per configured volume, with what it holds (`status`'s own verdicts).
async fn volumes(engine: &Engine, config: &Config, options: &Options) -> Vec<Check> {
    let statuses = async {
        let specs = status::configured_specs(engine, config, &options.runtimes, &[]).await?;
        status::collect(engine, config, &specs, options.now).await
    };
    match statuses.await {
        Ok(statuses) => statuses
            .iter()
            .map(|v| {
                let mut c = v.check();
                c.detail = format!("{} ({}): {}", v.volume, v.account, c.detail);
                c
            })
            .collect(),
        Err(e) => vec![failed("volumes", "cannot read the auth volumes", &e)],
    }
}

/// The account store: readable, and which records were set aside.
fn account_store(config: &Config) -> Check {
    let name = "account-store";
    let Some(dir) = &config.state_dir else {
        return check(
            name,
            CheckStatus::Ok,
            "no state directory: MOONAUTH_STATE_DIR, XDG_STATE_HOME and HOME are unset".into(),
        )
        .warn("set MOONAUTH_STATE_DIR to an absolute path if you use `moonauth accounts`");
    };
    let store = match crate::state::open_existing(config) {
        Ok(Some(store)) => store,
        Ok(None) => {
            return check(
                name,
                CheckStatus::Ok,
                format!(
                    "no account store in {} ({}) yet; `moonauth accounts add` creates it",
                    dir.value.display(),
                    dir.source
                ),
            )
        }
        Err(e) => return failed(name, &format!("cannot open the store in {}", dir.value.display()), &e),
    };
    match store.read_unlocked() {
        Err(e) => failed(name, &format!("cannot read the store in {}", dir.value.display()), &e),
        Ok(state) if state.set_aside.is_empty() => check(
            name,
            CheckStatus::Ok,
            format!("{} account(s) in {}", state.accounts.len(), dir.value.display()),
        ),
        Ok(state) => {
            let aside: Vec<String> = state.set_aside.iter().map(ToString::to_string).collect();
            check(
                name,
                CheckStatus::Ok,
                format!(
                    "{} account(s) in {}; {} record(s) set aside: {}",
                    state.accounts.len(),
                    dir.value.display(),
                    aside.len(),
                    aside.join("; ")
                ),
            )
            .warn("a newer moonauth wrote them: upgrade moonauth, or remove them with `moonauth accounts rm`")
        }
    }
}

/// The distinct origins (`scheme://host[:port]`) of the configured token URLs.
fn token_origins(config: &Config) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for url in [
        &config.renew.claude_token_url.value,
        &config.renew.codex_token_url.value,
    ] {
        if let Some(origin) = origin(url) {
            if !out.contains(&origin) {
                out.push(origin);
            }
        }
    }
    out
}

/// `https://host:port` of a URL: no path, query or user name, so nothing secret can ride along.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, host)| host);
    (!authority.is_empty()).then(|| format!("{}://{authority}", scheme.to_ascii_lowercase()))
}

/// Whether `origin` answers an HTTP HEAD within `timeout`. Any HTTP status counts as
/// reachable: the point is the route (DNS, proxy, firewall, TLS), not the endpoint's verdict.
fn token_endpoint(origin: &str, timeout: Duration) -> Check {
    let name = "token-endpoint";
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .user_agent(concat!("moonauth/", env!("CARGO_PKG_VERSION")))
        .build();
    let agent = ureq::Agent::new_with_config(config);
    let started = Instant::now();
    match agent.head(format!("{origin}/")).call() {
        Ok(response) => check(
            name,
            CheckStatus::Ok,
            format!(
                "{origin} answered HTTP {} in {} ms (HEAD /, nothing sent)",
                response.status().as_u16(),
                started.elapsed().as_millis()
            ),
        ),
        Err(e) => check(
            name,
            CheckStatus::Ok,
            format!("{origin} cannot be reached: {}", crate::redact::scrub(&e.to_string())),
        )
        .fail(
            Exit::Failure,
            "check DNS, the proxy (HTTPS_PROXY) and the firewall for this host; `moonauth renew` needs it",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_warns_only_past_the_allowed_skew_either_way() {
        let engine = "2026-01-01T00:00:00.123456789Z";
        let at = |secs: i64| {
            let base = SystemTime::from("2026-01-01T00:00:00.123456789Z".parse::<jiff::Timestamp>().unwrap());
            if secs >= 0 {
                base + Duration::from_secs(secs as u64)
            } else {
                base - Duration::from_secs((-secs) as u64)
            }
        };
        assert_eq!(clock(at(0), engine).status, CheckStatus::Ok);
        assert_eq!(clock(at(170), engine).status, CheckStatus::Ok);
        let ahead = clock(at(600), engine);
        assert_eq!(ahead.status, CheckStatus::Warn);
        assert!(ahead.detail.contains("10m ahead of"), "{}", ahead.detail);
        let behind = clock(at(-600), engine);
        assert_eq!(behind.status, CheckStatus::Warn);
        assert!(behind.detail.contains("behind"), "{}", behind.detail);
        assert!(behind.fix.is_some());
        assert_eq!(clock(at(0), "not a time").status, CheckStatus::Warn);
    }

    #[test]
    fn origin_drops_path_query_and_user_so_nothing_secret_is_sent() {
        assert_eq!(
            origin("https://platform.claude.com/v1/oauth/token").as_deref(),
            Some("https://platform.claude.com")
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/t?x=1").as_deref(),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("HTTPS://u:p@host/x").as_deref(), Some("https://host"));
        assert_eq!(origin("no-scheme"), None);
    }

    #[test]
    fn the_first_failure_decides_the_exit_code() {
        let ok = check("a", CheckStatus::Ok, String::new());
        let warn = check("b", CheckStatus::Ok, String::new()).warn("x");
        let unreachable = check("engine", CheckStatus::Ok, String::new()).fail(Exit::DockerUnreachable, "y");
        let unusable = check("volume", CheckStatus::Ok, String::new()).fail(Exit::LoginUnusable, "z");
        let report = DoctorReport::new(vec![ok.clone(), warn.clone()], false, vec![]);
        assert!(report.ok);
        assert_eq!((report.exit(), report.exit_code), (Exit::Ok, 0));
        let report = DoctorReport::new(vec![ok, unreachable, warn, unusable], false, vec![]);
        assert!(!report.ok);
        assert_eq!((report.exit(), report.exit_code), (Exit::DockerUnreachable, 6));
    }
}
