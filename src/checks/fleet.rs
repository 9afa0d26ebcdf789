//! The `fleet-state` check, only when `MOONAUTH_STATE_URL` is set (the fast path without
//! it is untouched): whether the fleet's database answers (bounded by the connect
//! timeout), its schema is one this moonauth knows, and the key opens its logins. An
//! unreachable database is a warning, not a failure: workers go on with the logins
//! their volumes hold, and nothing is refreshed until it is back. The URL is shown with
//! its password masked.

use crate::config::Config;
use crate::error::Error;
use crate::exit::Exit;
use crate::state::postgres::PgStore;
use crate::state::seal::Sealer;

use super::{Check, CheckStatus};

/// The check, or `None` when no fleet database is configured.
pub fn check(config: &Config) -> Option<Check> {
    let fleet = config.fleet.as_ref()?;
    let shown = crate::redact::url(fleet.url.value.expose());
    let check = |status: CheckStatus, detail: String| Check {
        runtime: None,
        check: "fleet-state",
        status,
        detail,
        fix: None,
        login: None,
        exit: Exit::Ok,
    };
    let store = match PgStore::connect(&fleet.url.value) {
        Ok(store) => store,
        Err(e @ Error::StateUnreachable { .. }) => {
            return Some(check(
                CheckStatus::Warn,
                format!("{e}; workers go on with the logins their volumes hold, and nothing is refreshed until it is back"),
            ).warn("start the database, or point MOONAUTH_STATE_URL at it (docs/fleet.md)"));
        }
        Err(e) => {
            let exit = e.exit();
            let fix = e.hint().unwrap_or_else(|| "see docs/fleet.md".into());
            return Some(check(CheckStatus::Fail, e.to_string()).fail(exit, fix));
        }
    };
    let Some(key) = &fleet.key else {
        return Some(
            check(
                CheckStatus::Fail,
                format!("{shown} answers, but neither MOONAUTH_STATE_KEY nor MOONAUTH_STATE_KEY_FILE is set: no login can be published or taken up"),
            )
            .fail(Exit::StateKey, "set MOONAUTH_STATE_KEY (at least 32 characters, the same on every host) or MOONAUTH_STATE_KEY_FILE"),
        );
    };
    if let Err(e) = Sealer::new(&key.value, |create| store.key_record(create)) {
        let fix = e.hint().unwrap_or_default();
        return Some(check(CheckStatus::Fail, e.to_string()).fail(e.exit(), fix));
    }
    let version = store.schema_version().unwrap_or_default();
    Some(check(
        CheckStatus::Ok,
        format!("{shown} answers (schema {version}), and the key opens the fleet's logins"),
    ))
}
