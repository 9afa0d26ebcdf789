//! `moonauth runtime resolve`: the task runtime, and the normalized task payload.

use std::io::Read;

use crate::agents;
use crate::cli::ResolveArgs;
use crate::config::{Config, Overrides};
use crate::error::{Error, Result};
use crate::exit::Exit;
use crate::output::{self, ResolveReport};
use crate::source::Env;

pub fn resolve(args: ResolveArgs, env: &Env) -> Result<Exit> {
    // Validate the default first: a bad MOONMIND_DEFAULT_TASK_RUNTIME fails every task.
    let default = agents::default_task_runtime(env)?;
    // Then every other setting, as every command does: a bad value fails fast here too
    // instead of surfacing later in a worker that shares this configuration.
    Config::resolve(env, &Overrides::default())?;
    super::clock(env)?;
    match &args.payload {
        None => {
            let resolved = agents::resolve_explicit(args.explicit.as_deref(), &default)?;
            let report = ResolveReport {
                schema: "moonauth.runtime-resolve.v1",
                ok: true,
                exit_code: 0,
                runtime: resolved.value,
                source: resolved.source,
            };
            super::written(output::emit(&report, args.json))?;
        }
        Some(path) => {
            let (name, text) = if path.as_os_str() == "-" {
                let mut s = String::new();
                std::io::stdin().read_to_string(&mut s).map_err(|e| Error::Payload {
                    source_name: "stdin".into(),
                    reason: e.to_string(),
                })?;
                ("stdin".to_string(), s)
            } else {
                let name = path.display().to_string();
                let s = std::fs::read_to_string(path).map_err(|e| Error::Payload {
                    source_name: name.clone(),
                    reason: e.to_string(),
                })?;
                (name, s)
            };
            let payload: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Payload {
                source_name: name.clone(),
                reason: format!("not valid JSON: {e}"),
            })?;
            let normalized =
                agents::normalize_payload(payload, args.explicit.as_deref(), &default).map_err(|e| match e {
                    Error::Payload { reason, .. } => Error::Payload {
                        source_name: name,
                        reason,
                    },
                    other => other,
                })?;
            tracing::info!(runtime = %normalized.runtime.value, source = %normalized.runtime.source, "resolved task runtime");
            let mut out = serde_json::to_string_pretty(&normalized.payload).expect("a JSON value always serializes");
            out.push('\n');
            super::written(write_stdout(&out))?;
        }
    }
    Ok(Exit::Ok)
}

fn write_stdout(text: &str) -> std::io::Result<()> {
    use std::io::Write;
    match std::io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}
