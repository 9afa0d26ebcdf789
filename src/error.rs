//! Typed errors. Each variant names the input a person got wrong (a variable, a flag,
//! a file, a payload field) and [`Error::hint`] says what fixes it. Messages never
//! carry a credential value.

use std::path::PathBuf;

use crate::exit::Exit;

/// Everything moonauth reports as an error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An environment variable (process or `.env`) holds a value moonauth cannot use.
    #[error("{var}={value:?} is not valid: {reason}")]
    InvalidVariable { var: String, value: String, reason: String },

    /// A command-line flag holds a value moonauth cannot use.
    #[error("{flag} {value:?} is not valid: {reason}")]
    InvalidFlag {
        flag: &'static str,
        value: String,
        reason: String,
    },

    /// A field of a task payload holds a value moonauth cannot use.
    #[error("task payload field {field} = {value:?} is not valid: {reason}")]
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
