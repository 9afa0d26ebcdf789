//! Where settings come from: the injected environment ([`Env`]: the process environment
//! over the `.env` file) and the record of each value's origin ([`Source`], [`Sourced`]).
//! Imports nothing of moonauth, so every layer may use it.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The env file could not be read or parsed; `reason` never repeats a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot read the env file {}: {reason}", path.display())]
pub struct EnvFileError {
    pub path: PathBuf,
    pub reason: String,
}

/// Where a variable's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// The process environment.
    Process,
    /// The `.env` file (dotenvy).
    DotEnv,
}

/// The variables moonauth may read: the process environment over the `.env` file.
#[derive(Debug, Clone, Default)]
pub struct Env {
    vars: BTreeMap<String, (String, Origin)>,
}

impl Env {
    /// An environment from explicit pairs (tests, library callers).
    pub fn from_pairs<K: Into<String>, V: Into<String>>(pairs: impl IntoIterator<Item = (K, V)>) -> Self {
        let vars = pairs
            .into_iter()
            .map(|(k, v)| (k.into(), (v.into(), Origin::Process)))
            .collect();
        Env { vars }
    }

    /// The process environment layered over an optional `.env` file. An explicitly
    /// named file must exist; the default `./.env` is read only when present.
    pub fn load(
        process: impl IntoIterator<Item = (String, String)>,
        env_file: Option<&Path>,
    ) -> Result<Self, EnvFileError> {
        let mut vars = BTreeMap::new();
        let (path, required) = match env_file {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from(".env"), false),
        };
        if required || path.is_file() {
            let iter = dotenvy::from_path_iter(&path).map_err(|e| EnvFileError {
                path: path.clone(),
                reason: describe_dotenv_error(&e, &path),
            })?;
            for item in iter {
                let (k, v) = item.map_err(|e| EnvFileError {
                    path: path.clone(),
                    reason: describe_dotenv_error(&e, &path),
                })?;
                vars.insert(k, (v, Origin::DotEnv));
            }
        }
        for (k, v) in process {
            vars.insert(k, (v, Origin::Process));
        }
        Ok(Env { vars })
    }

    /// A variable's raw value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(|(v, _)| v.as_str())
    }

    /// A variable's value when set and not blank, trimmed.
    pub fn non_blank(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Where a variable came from, when set.
    pub fn origin(&self, name: &str) -> Option<&Origin> {
        self.vars.get(name).map(|(_, o)| o)
    }

    /// The source to report for a variable that was read.
    pub fn source_of(&self, name: &str) -> Source {
        match self.origin(name) {
            Some(Origin::DotEnv) => Source::DotEnv(name.to_string()),
            _ => Source::Env(name.to_string()),
        }
    }

    /// Variables that came from the `.env` file only (handed on to an exec'd worker,
    /// so it sees what preflight checked).
    pub fn dotenv_only(&self) -> impl Iterator<Item = (&str, &str)> {
        self.vars
            .iter()
            .filter(|(_, (_, o))| *o == Origin::DotEnv)
            .map(|(k, (v, _))| (k.as_str(), v.as_str()))
    }

    pub fn pairs(&self) -> impl Iterator<Item = (String, String)> + '_ {
        self.vars.iter().map(|(k, (v, _))| (k.clone(), v.clone()))
    }
}

/// Says what is wrong with an env file without ever repeating a value: dotenvy's parse
/// error carries the line, or only its value, which may be a key; so the file is read
/// again to find the line's number and its variable's name, and only those are shown.
fn describe_dotenv_error(e: &dotenvy::Error, path: &Path) -> String {
    match e {
        dotenvy::Error::LineParse(text, idx) => {
            let at = match locate_bad_line(path, text) {
                Some((n, Some(k))) => format!("line {n} ({k})"),
                Some((n, None)) => format!("line {n}"),
                None => "a line".to_string(),
            };
            format!(
                "{at} could not be parsed near character {idx}; a value with spaces, `#` or quotes \
                 must be quoted, e.g. KEY=\"two words\""
            )
        }
        dotenvy::Error::Io(io) => io.to_string(),
        dotenvy::Error::EnvVar(v) => v.to_string(),
        _ => "unreadable".to_string(),
    }
}

/// The 1-based number and the variable name of the first line of `path` that is `text`
/// or whose value is `text` (dotenvy reports text, not a number). The file was just read
/// whole by dotenvy; this second read is bounded all the same.
fn locate_bad_line(path: &Path, text: &str) -> Option<(usize, Option<String>)> {
    use std::io::Read;
    let first = text.lines().next()?.trim();
    let mut file = String::new();
    std::fs::File::open(path)
        .ok()?
        .take(ENV_FILE_MAX_BYTES)
        .read_to_string(&mut file)
        .ok()?;
    file.lines().enumerate().find_map(|(i, line)| {
        let line = line.trim();
        let (key, value) = line.split_once('=').unwrap_or((line, ""));
        let key = key.trim().trim_start_matches("export ").trim();
        if line.starts_with('#') || (line != first && value.trim() != first) {
            return None;
        }
        let named = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        Some((i + 1, named.then(|| key.to_string())))
    })
}

/// The most of an env file read again to find a bad line's number.
const ENV_FILE_MAX_BYTES: u64 = 1 << 20;

/// Where a resolved setting came from, reported in `--json` and error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A command-line flag.
    Flag(&'static str),
    /// A process environment variable.
    Env(String),
    /// A variable from the `.env` file.
    DotEnv(String),
    /// A field of a task payload.
    Payload(&'static str),
    /// The state store (`moonauth settings set`).
    Store,
    /// moonauth's built-in default.
    Default,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Flag(flag) => write!(f, "flag {flag}"),
            Source::Env(var) => write!(f, "env {var}"),
            Source::DotEnv(var) => write!(f, ".env {var}"),
            Source::Payload(field) => write!(f, "payload {field}"),
            Source::Store => f.write_str("store"),
            Source::Default => f.write_str("default"),
        }
    }
}

impl Serialize for Source {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// A value with the place it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Sourced<T> {
    pub value: T,
    pub source: Source,
}

impl<T> Sourced<T> {
    pub fn new(value: T, source: Source) -> Self {
        Sourced { value, source }
    }
}
