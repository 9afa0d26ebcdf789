//! The Docker Engine API, through bollard: connecting (with API version negotiation and
//! a timeout on every call), volumes, archives (tar in and out of volumes), and the
//! attached terminal of a login container. moonauth never runs the `docker` CLI.

pub mod archive;
pub mod doctor;
pub mod helper;
pub mod login;
pub mod session;
pub mod status;
pub mod volumes;

use std::future::Future;
use std::time::Duration;

use bollard::{Docker, API_DEFAULT_VERSION};

use crate::config::DockerSettings;
use crate::error::{Error, Result};

/// The socket Docker listens on by default.
pub const DEFAULT_HOST: &str = "unix:///var/run/docker.sock";

/// A connected Docker engine.
pub struct Engine {
    docker: Docker,
    host: String,
    timeout: Duration,
    api_version: String,
    /// Set once the empty image is known to exist, to spare an API call per use.
    empty_image_ready: std::sync::atomic::AtomicBool,
}

impl Engine {
    /// Connects to `DOCKER_HOST` (or the local socket) and negotiates the API version.
    /// An engine that does not answer within the timeout is [`Error::DockerUnreachable`].
    pub async fn connect(settings: &DockerSettings) -> Result<Engine> {
        let host = settings.host.clone().unwrap_or_else(|| DEFAULT_HOST.to_string());
        let timeout = settings.timeout.value;
        let secs = timeout.as_secs().max(1);
        let unreachable = |reason: String| Error::DockerUnreachable {
            host: host.clone(),
            reason,
        };
        let docker = if host.starts_with("unix://") || host.starts_with('/') {
            Docker::connect_with_unix(&host, secs, API_DEFAULT_VERSION)
        } else if host.starts_with("tcp://") || host.starts_with("http://") {
            Docker::connect_with_http(&host, secs, API_DEFAULT_VERSION)
        } else {
            return Err(Error::InvalidVariable {
                var: "DOCKER_HOST".into(),
                value: host.clone(),
                reason: "moonauth speaks to unix:// sockets and tcp:// or http:// hosts".into(),
            });
        }
        .map_err(|e| unreachable(describe(&e)))?;
        let docker = match tokio::time::timeout(timeout, docker.negotiate_version()).await {
            Err(_) => {
                return Err(unreachable(format!(
                    "no answer within {}",
                    humantime::format_duration(timeout)
                )))
            }
            Ok(Err(e)) => return Err(unreachable(describe(&e))),
            Ok(Ok(d)) => d,
        };
        let v = docker.client_version();
        let api_version = format!("{}.{}", v.major_version, v.minor_version);
        tracing::debug!(%host, %api_version, "connected to the Docker engine");
        Ok(Engine {
            docker,
            host,
            timeout,
            api_version,
            empty_image_ready: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// The host moonauth is connected to.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The negotiated Engine API version.
    pub fn api_version(&self) -> &str {
        &self.api_version
    }

    /// The bollard client, for modules of this one.
    pub(crate) fn client(&self) -> &Docker {
        &self.docker
    }

    /// Runs one API call under the timeout, mapping its failure to [`Error::Docker`].
    pub(crate) async fn call<T>(
        &self,
        action: impl Into<String>,
        fut: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<T> {
        let action = action.into();
        match self.timed(&action, fut).await? {
            Err(e) => Err(self.error(action, &e)),
            Ok(v) => Ok(v),
        }
    }

    /// Like [`Engine::call`], but a 404 is `Ok(None)`.
    pub(crate) async fn call_opt<T>(
        &self,
        action: impl Into<String>,
        fut: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<Option<T>> {
        let action = action.into();
        match self.timed(&action, fut).await? {
            Err(e) if status_of(&e) == Some(404) => Ok(None),
            Err(e) => Err(self.error(action, &e)),
            Ok(v) => Ok(Some(v)),
        }
    }

    /// The call's own result, or [`Error::DockerUnreachable`] when the engine does not
    /// answer within the timeout.
    async fn timed<T>(
        &self,
        action: &str,
        fut: impl Future<Output = std::result::Result<T, bollard::errors::Error>>,
    ) -> Result<std::result::Result<T, bollard::errors::Error>> {
        tokio::time::timeout(self.timeout, fut)
            .await
            .map_err(|_| Error::DockerUnreachable {
                host: self.host.clone(),
                reason: format!(
                    "{action}: no answer within {}",
                    humantime::format_duration(self.timeout)
                ),
            })
    }

    pub(crate) fn error(&self, action: String, e: &bollard::errors::Error) -> Error {
        if is_connection_error(e) {
            return Error::DockerUnreachable {
                host: self.host.clone(),
                reason: format!("{action}: {}", describe(e)),
            };
        }
        Error::Docker {
            action,
            reason: describe(e),
            hint: None,
        }
    }
}

/// The HTTP status of an Engine API error response.
pub(crate) fn status_of(e: &bollard::errors::Error) -> Option<u16> {
    match e {
        bollard::errors::Error::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn is_connection_error(e: &bollard::errors::Error) -> bool {
    use bollard::errors::Error as B;
    matches!(
        e,
        B::SocketNotFoundError(_) | B::HyperResponseError { .. } | B::RequestTimeoutError
    )
}

/// One line on a bollard error, with the engine's own message when it sent one.
pub(crate) fn describe(e: &bollard::errors::Error) -> String {
    use bollard::errors::Error as B;
    match e {
        B::DockerResponseServerError { status_code, message } => format!("{message} (HTTP {status_code})"),
        B::SocketNotFoundError(path) => format!("no socket at {path}"),
        B::RequestTimeoutError => "the request timed out".into(),
        other => {
            // Walk to the innermost cause: "connection refused" says more than "client error".
            let mut msg = other.to_string();
            let mut source = std::error::Error::source(other);
            while let Some(s) = source {
                msg = s.to_string();
                source = s.source();
            }
            msg
        }
    }
}

/// A current-thread runtime for the commands that talk to Docker. Preflight never starts one.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting the async runtime", e))
}
