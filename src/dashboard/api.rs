//! The dashboard's JSON API. Every answer is a report struct the CLI's `--json` prints
//! too, or an [`ApiError`] `{code, message, details}` with its HTTP status (404 an
//! unknown account, 409 a conflict, 422 a value that breaks a rule). Changes go through
//! the store's locked read-modify-write and touch only their target; store work runs on
//! tokio's blocking pool, since the store's lock waits by sleeping.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::reauth::{self, ReauthReport};
use super::App;
use crate::error::Error;
use crate::rotation::report::{FleetReport, ForceAction, ForceReport, LogReport, SettingsReport};
use crate::rotation::settings::{self, Flags};
use crate::rotation::{self, force, steer};
use crate::state::accounts::AccountKind;
use crate::state::report::{AccountRow, Action, ChangeReport};

/// A refused or failed API request, as JSON: a stable `code`, a `message` for people
/// and `details` (the field and rule of a validation error, the alias of an unknown
/// account).
#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Value,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>, details: Value) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            details,
        }
    }

    /// A value that breaks a rule: 422 naming the field and the rule.
    pub fn validation(field: &str, rule: impl Into<String>) -> ApiError {
        let rule = rule.into();
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            format!("{field}: {rule}"),
            json!({ "field": field, "rule": rule }),
        )
    }

    pub fn not_found(what: &str) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", format!("no such {what}"), json!({}))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(&self)).into_response()
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        // Error's Display is written for people and never holds a secret.
        let message = e.to_string();
        match e {
            Error::UnknownAccount { alias } => ApiError::new(
                StatusCode::NOT_FOUND,
                "unknown-account",
                message,
                json!({ "alias": alias }),
            ),
            Error::DuplicateAccount { alias } => {
                ApiError::new(StatusCode::CONFLICT, "conflict", message, json!({ "alias": alias }))
            }
            Error::InvalidFlag { flag, reason, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                message,
                json!({ "field": flag, "rule": reason }),
            ),
            Error::InvalidVariable { var, reason, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                message,
                json!({ "field": var, "rule": reason }),
            ),
            Error::InvalidSetting { field, rule, .. } => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                message,
                json!({ "field": field, "rule": rule }),
            ),
            Error::StoreLocked { .. } => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "store-busy", message, json!({}))
            }
            _ => ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message, json!({})),
        }
    }
}

type ApiResult<T> = std::result::Result<T, ApiError>;

/// Runs store work on the blocking pool.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> crate::error::Result<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", e.to_string(), json!({})))?
        .map_err(ApiError::from)
}

/// Parses a JSON body; one that is not of the request's `shape` is a 422 that shows
/// the shape. serde's own message is not passed on: it quotes the value it refused,
/// which may be a pasted secret.
pub fn body<T: DeserializeOwned>(bytes: &[u8], shape: &str) -> ApiResult<T> {
    serde_json::from_slice(bytes).map_err(|_| ApiError::validation("body", format!("must be JSON: {shape}")))
}

/// `GET /api/accounts`: every account as rotation sees it now (eligible or not and why,
/// its tier, cooldown, re-login mark, usage windows with freshness and history, last
/// use, force state), from each runtime's decision, peeked: nothing is recorded.
pub async fn accounts(State(app): State<App>) -> ApiResult<Response> {
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let cache = Arc::clone(&app.cache);
    let bytes = blocking(move || {
        cache.answer(&store, now, |state| {
            let settings = settings::resolve(&state.settings, &env, &Flags::default())?;
            let report: FleetReport = rotation::fleet(state, &settings, &env, now);
            // A report of plain values always serializes.
            Ok(serde_json::to_vec(&report).unwrap_or_default())
        })
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], bytes).into_response())
}

/// The store revision a change wrote, on the answer of every change (so a client can
/// order concurrent answers: the highest revision is what the store holds).
pub const REVISION_HEADER: &str = "x-moonauth-revision";

/// The body of `PUT /api/accounts/{alias}/enabled`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EnabledBody {
    pub enabled: bool,
    /// When given, the change is made only if the store is still at this revision
    /// (else 409): a client that shows a state can change exactly that state.
    #[serde(default)]
    pub revision: Option<u64>,
}

/// `PUT /api/accounts/{alias}/enabled`: `moonauth accounts enable|disable`, one locked
/// write of that one account. Setting a value (not toggling) makes concurrent requests
/// end in a defined state: the last one to take the lock wins, and each answer says
/// what it wrote.
pub async fn set_enabled(State(app): State<App>, Path(alias): Path<String>, bytes: Bytes) -> ApiResult<Response> {
    let req: EnabledBody = body(&bytes, r#"{"enabled": true|false, "revision"?: N}"#)?;
    let now = app.clock.now();
    let store = app.store.clone();
    let outcome = blocking(move || {
        let mut guard = store.lock(crate::state::DEFAULT_LOCK_TIMEOUT)?;
        let revision = guard.state().revision;
        if req.revision.is_some_and(|r| r != revision) {
            return Ok(Err(revision));
        }
        guard.state_mut().set_enabled(&alias, req.enabled)?;
        let account = guard.state_mut().account_mut(&alias)?.clone();
        guard.commit()?;
        Ok(Ok((account, revision + 1)))
    })
    .await?;
    match outcome {
        Ok((account, written)) => Ok((
            [(REVISION_HEADER, written.to_string())],
            Json(ChangeReport::new(
                if account.enabled {
                    Action::Enabled
                } else {
                    Action::Disabled
                },
                AccountRow::new(&account, now),
            )),
        )
            .into_response()),
        Err(current) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("the store changed (it is at revision {current}); reload and try again"),
            json!({ "revision": current }),
        )),
    }
}

/// `GET /api/accounts/{alias}/reauth`: the account's re-auth as it stands.
pub async fn reauth_state(State(app): State<App>, Path(alias): Path<String>) -> ApiResult<Json<ReauthReport>> {
    find_account(&app, &alias).await?;
    Ok(Json(app.reauths.report(&alias)))
}

/// `POST /api/accounts/{alias}/reauth`: starts `moonauth login RUNTIME --account ALIAS`
/// for the account (202); 409 while one runs, 422 for an account with no login.
pub async fn reauth_start(State(app): State<App>, Path(alias): Path<String>) -> ApiResult<Response> {
    let account = find_account(&app, &alias).await?;
    if account.kind != AccountKind::Oauth {
        return Err(ApiError::validation(
            "alias",
            "an API-key account has no login to renew; change its key where it lives",
        ));
    }
    let started = app.reauths.start(
        &alias,
        account.runtime,
        Arc::clone(&app.config),
        app.store.clone(),
        app.clock.now(),
    );
    match started {
        Ok(report) => Ok((StatusCode::ACCEPTED, Json(report)).into_response()),
        Err(_) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("a re-auth of {alias} is already in progress"),
            json!({ "alias": alias }),
        )),
    }
}

/// The body of `POST /api/accounts/{alias}/reauth/code`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CodeBody {
    pub code: String,
}

/// `POST /api/accounts/{alias}/reauth/code`: types the code the sign-in page gave into
/// the running login; 409 when none runs.
pub async fn reauth_code(
    State(app): State<App>,
    Path(alias): Path<String>,
    bytes: Bytes,
) -> ApiResult<Json<ReauthReport>> {
    let req: CodeBody = body(&bytes, r#"{"code": "…"}"#)?;
    let code = req.code.trim().to_string();
    if code.is_empty() || code.len() > 4096 || code.chars().any(char::is_control) {
        return Err(ApiError::validation(
            "code",
            "one line of text, as the sign-in page shows it",
        ));
    }
    find_account(&app, &alias).await?;
    app.reauths
        .send_code(&alias, code)
        .map(Json)
        .map_err(|_: reauth::Refused| {
            ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                format!("no re-auth of {alias} is waiting for a code"),
                json!({ "alias": alias }),
            )
        })
}

async fn find_account(app: &App, alias: &str) -> ApiResult<crate::state::accounts::Account> {
    let store = app.store.clone();
    let alias = alias.to_string();
    blocking(move || {
        let state = store.read_unlocked()?;
        state.account(&alias).cloned().ok_or(Error::UnknownAccount { alias })
    })
    .await
}

/// The body of `POST /api/force`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForceBody {
    pub alias: String,
    /// How long (`30m`, `24h`, `1d`); 24h when absent, as `accounts force`.
    #[serde(default, rename = "for")]
    pub duration: Option<String>,
}

/// Who force mode names as having forced an account from the page.
pub const FORCED_BY: &str = "dashboard";

/// `POST /api/force`: `moonauth accounts force ALIAS [--for D]`. 404 an unknown alias,
/// 409 an account that cannot be chosen now (disabled, cooling down, …), 422 a bad
/// duration. Forcing the account already forced keeps its time.
pub async fn force_set(State(app): State<App>, bytes: Bytes) -> ApiResult<Json<ForceReport>> {
    let req: ForceBody = body(&bytes, r#"{"alias": "…", "for"?: "24h"}"#)?;
    let duration = match req.duration {
        None => force::DEFAULT_FORCE_FOR,
        Some(given) => steer::parse_force_duration(&given).map_err(|rule| ApiError::validation("for", rule))?,
    };
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let alias = req.alias;
    let outcome = blocking(move || {
        let mut guard = store.lock(crate::state::DEFAULT_LOCK_TIMEOUT)?;
        let action = match steer::force(guard.state_mut(), &alias, duration, FORCED_BY, &env, now)? {
            Ok(action) => action,
            Err(why) => return Ok(Err((alias, why))),
        };
        let strategy = settings::resolve(&guard.state().settings, &env, &Flags::default())?
            .strategy
            .value;
        let state = guard.state().clone();
        if action == ForceAction::Forced {
            guard.commit()?;
        }
        Ok(Ok(ForceReport::new(action, &state, strategy, None, now)))
    })
    .await?;
    outcome.map(Json).map_err(|(alias, why)| {
        ApiError::new(
            StatusCode::CONFLICT,
            "conflict",
            format!("{alias} cannot be forced now: {why}"),
            json!({ "alias": alias, "why": why }),
        )
    })
}

/// `POST /api/force/clear`: `moonauth accounts force --clear`.
pub async fn force_clear(State(app): State<App>) -> ApiResult<Json<ForceReport>> {
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let report = blocking(move || {
        let mut guard = store.lock(crate::state::DEFAULT_LOCK_TIMEOUT)?;
        let configured = settings::resolve(&guard.state().settings, &env, &Flags::default())?
            .strategy
            .value;
        let was = guard.state().force.clone();
        let action = force::clear(guard.state_mut());
        let strategy = force::strategy_after(was.as_ref().filter(|f| f.active(now)), configured);
        let state = guard.state().clone();
        if action == ForceAction::Cleared {
            guard.commit()?;
        }
        let ended = was.map(|_| crate::state::steering::ForceEnd::Cleared);
        Ok(ForceReport::new(action, &state, strategy, ended, now))
    })
    .await?;
    Ok(Json(report))
}

/// `GET /api/settings`: `moonauth settings get --json`.
pub async fn settings_get(State(app): State<App>) -> ApiResult<Json<SettingsReport>> {
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let report = blocking(move || {
        let state = store.read_unlocked()?;
        let resolved = settings::resolve(&state.settings, &env, &Flags::default())?;
        Ok(SettingsReport::new("get", &resolved, &state, None, now))
    })
    .await?;
    Ok(Json(report))
}

/// `PUT /api/settings`: `moonauth settings set` for every key of the body at once
/// (`{"strategy": "priority", "threshold.low": 25}`), all or none: one value that breaks
/// its rule is a 422 naming the field and the rule, and nothing is written.
pub async fn settings_put(State(app): State<App>, bytes: Bytes) -> ApiResult<Json<SettingsReport>> {
    let shape =
        r#"{"strategy"?: "…", "preset"?: "…", "threshold.critical"?: N, "threshold.low"?: N, "weight.ALIAS"?: N}"#;
    let map: serde_json::Map<String, Value> = body(&bytes, shape)?;
    if map.is_empty() {
        return Err(ApiError::validation(
            "body",
            format!("must name at least one setting: {shape}"),
        ));
    }
    let mut pairs = Vec::new();
    for (key, value) in map {
        let value = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            _ => return Err(ApiError::validation(&key, "a string or a number")),
        };
        pairs.push((key, value));
    }
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let report = blocking(move || {
        let mut guard = store.lock(crate::state::DEFAULT_LOCK_TIMEOUT)?;
        steer::set_settings(guard.state_mut(), &pairs, "dashboard")?;
        let state = guard.state().clone();
        guard.commit()?;
        let resolved = settings::resolve(&state.settings, &env, &Flags::default())?;
        Ok(SettingsReport::new("set", &resolved, &state, None, now))
    })
    .await?;
    Ok(Json(report))
}

/// `POST /api/settings/reset`: `moonauth settings reset`.
pub async fn settings_reset(State(app): State<App>) -> ApiResult<Json<SettingsReport>> {
    let now = app.clock.now();
    let store = app.store.clone();
    let env = Arc::clone(&app.env);
    let report = blocking(move || {
        let mut guard = store.lock(crate::state::DEFAULT_LOCK_TIMEOUT)?;
        steer::reset_settings(guard.state_mut());
        let state = guard.state().clone();
        guard.commit()?;
        let resolved = settings::resolve(&state.settings, &env, &Flags::default())?;
        Ok(SettingsReport::new("reset", &resolved, &state, None, now))
    })
    .await?;
    Ok(Json(report))
}

/// The query of `GET /api/decisions`.
#[derive(Debug, Deserialize)]
pub struct DecisionsQuery {
    pub limit: Option<usize>,
}

/// The most decisions one answer carries.
pub const MAX_DECISIONS: usize = 1000;

/// `GET /api/decisions?limit=N`: `moonauth accounts log --json`, newest last (50 by default).
pub async fn decisions(
    State(app): State<App>,
    query: Result<Query<DecisionsQuery>, axum::extract::rejection::QueryRejection>,
) -> ApiResult<Json<LogReport>> {
    let limit = match query {
        Ok(Query(q)) => q.limit.unwrap_or(50),
        Err(_) => {
            return Err(ApiError::validation(
                "limit",
                format!("a whole number from 1 to {MAX_DECISIONS}"),
            ))
        }
    };
    if !(1..=MAX_DECISIONS).contains(&limit) {
        return Err(ApiError::validation(
            "limit",
            format!("a whole number from 1 to {MAX_DECISIONS}"),
        ));
    }
    let store = app.store.clone();
    let lines = blocking(move || store.decisions(limit)).await?;
    Ok(Json(LogReport::new(&lines)))
}
