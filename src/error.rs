//! Typed errors. Each variant names the input a person got wrong (a variable, a flag,
//! a file, a payload field) and [`Error::hint`] says what fixes it. Messages never
//! carry a credential value.

use std::path::PathBuf;

use crate::exit::Exit;

/// Everything moonauth reports as an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable (process or `.env`) holds a value moonauth cannot use.
    // The value is echoed through the redactor: a key pasted into the wrong variable must
    // not reach the terminal or a log.
    #[error("{var}={:?} is not valid: {reason}", crate::redact::scrub(value))]
    InvalidVariable { var: String, value: String, reason: String },

    /// A command-line flag holds a value moonauth cannot use.
    #[error("{flag} {:?} is not valid: {reason}", crate::redact::scrub(value))]
    InvalidFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },

    /// A field of a task payload holds a value moonauth cannot use.
    #[error(
        "task payload field {field} = {:?} is not valid: {reason}",
        crate::redact::scrub(value)
    )]
    InvalidPayloadField {
        field: &'static str,
        value: String,
        reason: String,
    },

    /// A task payload could not be read or is not a JSON object.
    #[error("cannot read the task payload from {source_name}: {reason}")]
    Payload { source_name: String, reason: String },

    /// The `.env` file could not be read or parsed.
    #[error("cannot read the env file {}: {reason}", path.display())]
    EnvFile { path: PathBuf, reason: String },

    /// The worker command after `--` was not found.
    #[error("worker command {command:?} was not found")]
    CommandNotFound { command: String },

    /// The worker command after `--` could not be executed.
    #[error("worker command {command:?} cannot be executed: {reason}")]
    CommandNotExecutable { command: String, reason: String },

    /// The Docker engine did not answer.
    #[error("cannot reach the Docker engine at {host}: {reason}")]
    DockerUnreachable { host: String, reason: String },

    /// A Docker Engine API call failed.
    #[error("Docker could not {action}: {reason}")]
    Docker {
        action: String,
        reason: String,
        hint: Option<String>,
    },

    /// A volume is not one moonauth created, so moonauth leaves it alone.
    #[error("volume {volume} was not created by moonauth (no moonauth labels); refusing to {action} it")]
    VolumeNotManaged { volume: String, action: &'static str },

    /// A volume is mounted by containers.
    #[error("volume {volume} is in use by container(s) {containers}")]
    VolumeInUse { volume: String, containers: String },

    /// A destructive action needs `--force`.
    #[error("{action} needs --force")]
    NeedsForce { action: String },

    /// `moonauth init` outside a container, without `--yes`: it would hand host
    /// directories to the worker uid.
    #[error("moonauth init is meant for the compose init service, and this is not a container ({rule}); it would change:\n{changes}")]
    InitOutsideContainer { rule: String, changes: String },

    /// The worker image is not on this Docker host.
    #[error("image {image} is not present on the Docker host (nothing is pulled)")]
    ImageMissing { image: String },

    /// No worker image was configured.
    #[error("no worker image to run the login in: MOONAUTH_IMAGE is not set")]
    NoImage,

    /// No statically linked moonauth to bring into the helper container that puts a
    /// login in place (this one is dynamic, and MOONAUTH_STATIC_BIN is unset or unusable).
    #[error("moonauth needs a statically linked moonauth to put the login in place: {reason}")]
    NoStaticBinary { reason: String },

    /// An interactive command was started without a terminal.
    #[error("`{command}` is interactive and needs a terminal on stdin and stdout")]
    NeedsTerminal { command: String },

    /// A login or sync did not produce a usable login; the old one is kept.
    #[error("{what}; the previous login{} is unchanged", if volume.is_empty() { String::new() } else { format!(" in {volume}") })]
    LoginFailed {
        what: String,
        volume: String,
        hint: Option<String>,
    },

    /// A rotation setting breaks its rule (`settings set`, a variable, a flag); nothing
    /// was changed.
    #[error("setting {field} = {value:?} is not valid: it must be {rule} (from {origin})")]
    InvalidSetting {
        /// Where the value was found: `settings set`, `env MOONAUTH_…`, `store`.
        origin: String,
        field: String,
        /// The value as given, already made safe to print.
        value: String,
        rule: String,
    },

    /// No account has this alias.
    #[error("there is no account {alias:?}")]
    UnknownAccount { alias: String },

    /// An account with this alias exists already.
    #[error("an account {alias:?} exists already")]
    DuplicateAccount { alias: String },

    /// Another process held the state store's lock for the whole wait.
    #[error("the account store lock {} is held by another process (waited {})", path.display(), humantime::format_duration(*waited))]
    StoreLocked { path: PathBuf, waited: std::time::Duration },

    /// Neither the state file nor its last-known-good copy can be read.
    #[error("the account store cannot be read: {}: {reason}", path.display())]
    StoreCorrupt { path: PathBuf, reason: String },

    /// The state file was written by a newer moonauth; this one does not overwrite it.
    #[error("the account store {} was written by a newer moonauth (format {version}; this one knows {supported})", path.display())]
    StoreTooNew {
        path: PathBuf,
        version: u64,
        supported: u64,
    },

    /// An I/O failure outside the cases above.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// The exit status this error ends the process with.
    pub fn exit(&self) -> Exit {
        match self {
            Error::InvalidVariable { .. }
            | Error::InvalidFlag { .. }
            | Error::InvalidPayloadField { .. }
            | Error::Payload { .. }
            | Error::EnvFile { .. } => Exit::Usage,
            Error::CommandNotFound { .. } => Exit::CommandNotFound,
            Error::CommandNotExecutable { .. } => Exit::CommandNotExecutable,
            Error::Io { .. } => Exit::Failure,
            Error::DockerUnreachable { .. } => Exit::DockerUnreachable,
            Error::Docker { .. }
            | Error::VolumeNotManaged { .. }
            | Error::VolumeInUse { .. }
            | Error::ImageMissing { .. } => Exit::DockerFailed,
            Error::NeedsForce { .. }
            | Error::NoImage
            | Error::NoStaticBinary { .. }
            | Error::InitOutsideContainer { .. } => Exit::Usage,
            Error::NeedsTerminal { .. } => Exit::NeedsTerminal,
            Error::LoginFailed { .. } => Exit::LoginFailed,
            Error::UnknownAccount { .. } | Error::DuplicateAccount { .. } => Exit::Usage,
            Error::InvalidSetting { .. } => Exit::InvalidSetting,
            Error::StoreLocked { .. } | Error::StoreCorrupt { .. } | Error::StoreTooNew { .. } => Exit::Failure,
        }
    }

    /// What the person should do about it.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::InvalidVariable { var, .. } => Some(format!(
                "set {var} to one of the allowed values, or unset it to use the default (see docs/configuration.md)"
            )),
            Error::InvalidFlag { flag, .. } => Some(format!("see `moonauth help` for what {flag} accepts")),
            Error::InvalidPayloadField { field, .. } => Some(format!(
                "fix {field} in the task payload, or leave it out to use the default"
            )),
            Error::Payload { .. } => Some("give --payload a file holding one JSON object, or - for stdin".into()),
            Error::EnvFile { .. } => Some("fix the file, or point --env-file at another one".into()),
            Error::CommandNotFound { .. } => Some("check the command after -- and the PATH of the container".into()),
            Error::CommandNotExecutable { .. } => {
                Some("make the file executable (chmod +x) or fix its interpreter line".into())
            }
            Error::Io { .. } => None,
            Error::DockerUnreachable { .. } => Some(
                "start the engine (dockerd, or systemctl start docker), or point DOCKER_HOST at it (unix:///var/run/docker.sock, tcp://host:2375)".into(),
            ),
            Error::Docker { hint, .. } => hint.clone(),
            Error::VolumeNotManaged { .. } => Some("remove it with the docker CLI if you really mean to".into()),
            Error::VolumeInUse { .. } => Some("stop and remove those containers first (docker compose down)".into()),
            Error::NeedsForce { .. } => Some("add --force to confirm; the login in it is lost".into()),
            Error::InitOutsideContainer { .. } => Some(
                "run it in the init service (docs/compose.md); to make these changes on this machine anyway add --yes, to only see them --dry-run".into(),
            ),
            Error::ImageMissing { .. } => Some(
                "build the worker image with moonauth in it (docker build -f compose/Dockerfile, see docs/compose.md) or set MOONAUTH_IMAGE / --image to one that is present".into(),
            ),
            Error::NoImage => Some("set MOONAUTH_IMAGE (or --image) to the worker image that has the CLIs".into()),
            Error::NoStaticBinary { .. } => Some(
                "build one with scripts/build-static.sh and set MOONAUTH_STATIC_BIN to the path it prints (target/x86_64-unknown-linux-musl/release/moonauth), or run the static build of moonauth itself".into(),
            ),
            Error::NeedsTerminal { .. } => Some(
                "run it from an interactive shell (or `docker run -it`); to copy an existing login instead use --sync-from DIR".into(),
            ),
            Error::LoginFailed { hint, .. } => hint.clone(),
            Error::UnknownAccount { .. } => Some("`moonauth accounts ls` lists the accounts".into()),
            Error::InvalidSetting { .. } => {
                Some("`moonauth settings get` shows every setting with its source; docs/rotation.md has the rules".into())
            }
            Error::DuplicateAccount { alias } => Some(format!(
                "choose another alias, or remove the old record first with `moonauth accounts rm {alias}`"
            )),
            Error::StoreLocked { path, .. } => Some(format!(
                "holders keep it for milliseconds, so one is stuck: `fuser -v {}` shows it (the lock is freed when it exits)",
                path.display()
            )),
            Error::StoreCorrupt { .. } => Some(
                "inspect the files in MOONAUTH_STATE_DIR; to start over, move state.json and state.json.good aside and add the accounts again with `moonauth accounts add`".into(),
            ),
            Error::StoreTooNew { .. } => Some(
                "run the moonauth version the other workers run; this one reads the store but does not write it".into(),
            ),
        }
    }

    /// Wraps an I/O error with what was being done.
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }
}

/// Result with moonauth's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl From<crate::source::EnvFileError> for Error {
    fn from(e: crate::source::EnvFileError) -> Self {
        Error::EnvFile {
            path: e.path,
            reason: e.reason,
        }
    }
}
