//! The PostgreSQL backend of the state store, for a fleet of hosts (`MOONAUTH_STATE_URL`).
//!
//! The [`State`] document is the file store's, in the same codec
//! ([`super::store::encode`]/[`super::store::decode`]), kept in one row that every
//! read-modify-write locks with `SELECT … FOR UPDATE` inside a transaction: no update is
//! lost, and a write that fails (the database restarted) is rolled back whole. Beside it:
//! a bounded decision log, the fleet refresh leases (expiry in database time, a fencing
//! number that grows with every grant) and the published login generations (sealed by
//! the caller; this module stores bytes). The schema is versioned ([`SCHEMA_VERSION`]);
//! [`PgStore::connect`] applies missing migrations under a transaction-level advisory
//! lock, so concurrent first users are safe, and refuses a database of a newer schema.
//!
//! Connections are synchronous (`postgres`, which runs its own small runtime: moonauth's
//! store callers are synchronous and never inside a tokio runtime), made on demand and
//! kept for reuse; one that broke (a database restart) is dropped and made anew.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use postgres::error::SqlState;
use postgres::{Client, NoTls};

use crate::error::{Error, Result};
use crate::redact::{self, Secret};
use crate::state::accounts::State;
use crate::state::store::{self, Undecodable};

/// The schema version this moonauth creates and understands.
pub const SCHEMA_VERSION: i32 = 1;
/// The connect timeout when the URL names none (`connect_timeout=`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// The advisory lock every migrator takes (an arbitrary constant: "moonauth").
const MIGRATION_LOCK: i64 = 0x6d6f_6f6e_6175_7468;

/// Migration `n` takes the schema from version `n` to `n + 1`.
const MIGRATIONS: &[&str] = &[
    // 1: the state document, the decision log, the leases, the generations, the key check.
    "CREATE TABLE moonauth_state (
         id int PRIMARY KEY CHECK (id = 1),
         revision bigint NOT NULL,
         document bytea
     );
     INSERT INTO moonauth_state (id, revision, document) VALUES (1, 0, NULL);
     CREATE TABLE moonauth_decisions (
         seq bigserial PRIMARY KEY,
         at timestamptz NOT NULL DEFAULT now(),
         line text NOT NULL
     );
     CREATE TABLE moonauth_leases (
         name text PRIMARY KEY,
         owner text,
         expires_at timestamptz,
         fencing bigint NOT NULL DEFAULT 0
     );
     CREATE TABLE moonauth_generations (
         login text NOT NULL,
         generation bigint NOT NULL,
         fencing bigint NOT NULL,
         sealed bytea NOT NULL,
         published_at timestamptz NOT NULL DEFAULT now(),
         PRIMARY KEY (login, generation)
     );
     CREATE TABLE moonauth_keys (
         id int PRIMARY KEY CHECK (id = 1),
         salt bytea NOT NULL,
         check_value bytea NOT NULL
     );",
];

/// The store in a PostgreSQL database.
pub struct PgStore {
    /// The URL with its password masked: the only form any message shows.
    shown: String,
    /// The password, to mask should a driver message ever echo it.
    password: Option<String>,
    config: postgres::Config,
    idle: Mutex<Vec<Client>>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgStore({})", self.shown)
    }
}

/// A held lease: what a protected write must carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fencing(pub i64);

/// A published login generation, still sealed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedGeneration {
    pub generation: i64,
    pub fencing: i64,
    pub sealed: Vec<u8>,
}

impl PgStore {
    /// Connects to the database `url` names (bounded by its `connect_timeout`, else
    /// [`DEFAULT_CONNECT_TIMEOUT`]) and brings its schema up to [`SCHEMA_VERSION`].
    pub fn connect(url: &Secret) -> Result<PgStore> {
        let shown = redact::url(url.expose());
        let mut config: postgres::Config =
            url.expose()
                .parse()
                .map_err(|e: postgres::Error| Error::InvalidVariable {
                    var: "MOONAUTH_STATE_URL".into(),
                    value: shown.clone(),
                    reason: mask(&e.to_string(), None),
                })?;
        if config.get_ssl_mode() == postgres::config::SslMode::Require {
            return Err(Error::InvalidVariable {
                var: "MOONAUTH_STATE_URL".into(),
                value: shown,
                reason: "sslmode=require: this moonauth connects without TLS; reach the database over a private network or a TLS tunnel (docs/fleet.md)".into(),
            });
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(DEFAULT_CONNECT_TIMEOUT);
        }
        // A host that vanished (not one that refused) is noticed, not waited on forever.
        config.keepalives(true).keepalives_idle(Duration::from_secs(10));
        if config.get_application_name().is_none() {
            config.application_name("moonauth");
        }
        let password = config
            .get_password()
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .filter(|p| !p.is_empty());
        let store = PgStore {
            shown,
            password,
            config,
            idle: Mutex::new(Vec::new()),
        };
        let mut client = store.client()?;
        store.migrate(&mut client)?;
        store.give_back(client);
        Ok(store)
    }

    /// The URL as it may be shown (password masked).
    pub fn shown(&self) -> &str {
        &self.shown
    }

    fn client(&self) -> Result<Client> {
        let idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner).pop();
        if let Some(client) = idle.filter(|c| !c.is_closed()) {
            return Ok(client);
        }
        self.config.connect(NoTls).map_err(|e| Error::StateUnreachable {
            url: self.shown.clone(),
            reason: self.describe(&e),
        })
    }

    fn give_back(&self, client: Client) {
        if !client.is_closed() {
            self.idle.lock().unwrap_or_else(PoisonError::into_inner).push(client);
        }
    }

    /// What went wrong, in words that never hold the password.
    fn describe(&self, e: &postgres::Error) -> String {
        let text = match e.as_db_error() {
            Some(db) => format!("{}: {}", db.severity(), db.message()),
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(e);
                while let Some(s) = source {
                    let s_text = s.to_string();
                    if !text.contains(&s_text) {
                        text.push_str(": ");
                        text.push_str(&s_text);
                    }
                    source = s.source();
                }
                text
            }
        };
        mask(&text, self.password.as_deref())
    }

    /// A failed statement as the store's error: unreachable when the connection is gone.
    fn error(&self, e: postgres::Error) -> Error {
        if e.is_closed() || e.as_db_error().is_none() {
            Error::StateUnreachable {
                url: self.shown.clone(),
                reason: self.describe(&e),
            }
        } else {
            Error::StateDatabase {
                url: self.shown.clone(),
                reason: self.describe(&e),
            }
        }
    }

    /// Runs `f` on a pooled connection; a connection that broke is not pooled again.
    fn with<T>(&self, f: impl FnOnce(&mut Client) -> std::result::Result<T, postgres::Error>) -> Result<T> {
        let mut client = self.client()?;
        let out = f(&mut client).map_err(|e| self.error(e));
        self.give_back(client);
        out
    }

    fn migrate(&self, client: &mut Client) -> Result<()> {
        let mut tx = client.transaction().map_err(|e| self.error(e))?;
        // Held to the end of this transaction: one migrator at a time, the rest wait and
        // then find the schema current.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .map_err(|e| self.error(e))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS moonauth_schema (
                 id int PRIMARY KEY CHECK (id = 1),
                 version int NOT NULL
             )",
        )
        .map_err(|e| self.error(e))?;
        let current: i32 = tx
            .query_opt("SELECT version FROM moonauth_schema WHERE id = 1", &[])
            .map_err(|e| self.error(e))?
            .map_or(0, |row| row.get(0));
        if current > SCHEMA_VERSION {
            return Err(Error::StateSchemaTooNew {
                url: self.shown.clone(),
                version: i64::from(current),
                supported: i64::from(SCHEMA_VERSION),
            });
        }
        if current == SCHEMA_VERSION {
            return tx.commit().map_err(|e| self.error(e));
        }
        for (from, migration) in MIGRATIONS.iter().enumerate().skip(current as usize) {
            tracing::info!(url = %self.shown, from, to = from + 1, "migrating the state schema");
            tx.batch_execute(migration).map_err(|e| self.error(e))?;
        }
        tx.execute(
            "INSERT INTO moonauth_schema (id, version) VALUES (1, $1)
             ON CONFLICT (id) DO UPDATE SET version = EXCLUDED.version",
            &[&SCHEMA_VERSION],
        )
        .map_err(|e| self.error(e))?;
        tx.commit().map_err(|e| self.error(e))
    }

    /// The schema version the database is at.
    pub fn schema_version(&self) -> Result<i32> {
        self.with(|c| {
            c.query_one("SELECT version FROM moonauth_schema WHERE id = 1", &[])
                .map(|r| r.get(0))
        })
    }

    /// The state, read without a lock (a row is read whole: never half a write).
    pub fn read(&self) -> Result<Decoded> {
        let document: Option<Vec<u8>> = self.with(|c| {
            c.query_one("SELECT document FROM moonauth_state WHERE id = 1", &[])
                .map(|r| r.get(0))
        })?;
        self.decode(document)
    }

    fn decode(&self, document: Option<Vec<u8>>) -> Result<Decoded> {
        let Some(bytes) = document else {
            return Ok(Decoded {
                state: State::default(),
                newer_version: None,
            });
        };
        match store::decode(&bytes) {
            Ok(d) => Ok(Decoded {
                newer_version: (d.version > store::VERSION).then_some(d.version),
                state: d.state,
            }),
            Err(Undecodable::TooNew(version)) => Err(Error::StoreTooNew {
                path: self.shown.clone().into(),
                version,
                supported: store::VERSION,
            }),
            Err(Undecodable::Broken(reason)) => Err(Error::StoreCorrupt {
                path: self.shown.clone().into(),
                reason,
            }),
        }
    }

    /// Opens a transaction and locks the state row, waiting at most `timeout` for it.
    pub fn lock(self: &Arc<Self>, timeout: Duration) -> Result<(Decoded, PgGuard)> {
        let mut client = self.client()?;
        // At least 1 ms: PostgreSQL reads a lock_timeout of 0 as "wait for ever".
        let millis = timeout.as_millis().clamp(1, i32::MAX as u128);
        let locked = client
            .batch_execute(&format!("BEGIN; SET LOCAL lock_timeout = {millis}"))
            .and_then(|()| client.query_one("SELECT document FROM moonauth_state WHERE id = 1 FOR UPDATE", &[]));
        let row = match locked {
            Ok(row) => row,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                self.give_back(client);
                if e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) {
                    return Err(Error::StoreLocked {
                        path: self.shown.clone().into(),
                        waited: timeout,
                    });
                }
                return Err(self.error(e));
            }
        };
        let decoded = match self.decode(row.get(0)) {
            Ok(d) => d,
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                self.give_back(client);
                return Err(e);
            }
        };
        let guard = PgGuard {
            store: Arc::clone(self),
            client: Some(client),
        };
        Ok((decoded, guard))
    }

    /// Appends one line to the decision log and trims it to `bound` lines.
    pub fn append_decision(&self, line: &str, bound: usize) -> Result<()> {
        let bound = bound as i64;
        self.with(|c| {
            let mut tx = c.transaction()?;
            let seq: i64 = tx
                .query_one(
                    "INSERT INTO moonauth_decisions (line) VALUES ($1) RETURNING seq",
                    &[&line],
                )?
                .get(0);
            tx.execute("DELETE FROM moonauth_decisions WHERE seq <= $1", &[&(seq - bound)])?;
            tx.commit()
        })
    }

    /// The newest `limit` lines of the decision log, oldest first.
    pub fn decisions(&self, limit: usize) -> Result<Vec<String>> {
        let limit = limit.min(i64::MAX as usize) as i64;
        self.with(|c| {
            let rows = c.query(
                "SELECT line FROM (SELECT seq, line FROM moonauth_decisions ORDER BY seq DESC LIMIT $1) newest
                 ORDER BY seq",
                &[&limit],
            )?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })
    }

    /// Takes the lease `name` for `owner` for `ttl` (database time), when it is free,
    /// expired or already `owner`'s. Every grant raises the fencing number.
    pub fn try_lease(&self, name: &str, owner: &str, ttl: Duration) -> Result<Option<Fencing>> {
        let secs = ttl.as_secs_f64();
        self.with(|c| {
            let row = c.query_opt(
                "INSERT INTO moonauth_leases AS l (name, owner, expires_at, fencing)
                 VALUES ($1, $2, now() + make_interval(secs => $3), 1)
                 ON CONFLICT (name) DO UPDATE
                    SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at, fencing = l.fencing + 1
                  WHERE l.owner IS NULL OR l.expires_at < now() OR l.owner = EXCLUDED.owner
                 RETURNING fencing",
                &[&name, &owner, &secs],
            )?;
            Ok(row.map(|r| Fencing(r.get(0))))
        })
    }

    /// Who holds the lease `name` now, if anyone does (an expired one is nobody's).
    pub fn lease_holder(&self, name: &str) -> Result<Option<String>> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT owner FROM moonauth_leases WHERE name = $1 AND owner IS NOT NULL AND expires_at >= now()",
                &[&name],
            )?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    /// Extends the lease by `ttl` from now, when `fencing` is still its current, unexpired
    /// grant; false otherwise.
    pub fn extend_lease(&self, name: &str, owner: &str, fencing: Fencing, ttl: Duration) -> Result<bool> {
        let secs = ttl.as_secs_f64();
        self.with(|c| {
            c.execute(
                "UPDATE moonauth_leases SET expires_at = now() + make_interval(secs => $4)
                  WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at >= now()",
                &[&name, &owner, &fencing.0, &secs],
            )
            .map(|n| n == 1)
        })
    }

    /// Gives the lease back, if it is still this grant.
    pub fn release_lease(&self, name: &str, owner: &str, fencing: Fencing) -> Result<()> {
        self.with(|c| {
            c.execute(
                "UPDATE moonauth_leases SET owner = NULL, expires_at = NULL
                  WHERE name = $1 AND owner = $2 AND fencing = $3",
                &[&name, &owner, &fencing.0],
            )
            .map(drop)
        })
    }

    /// Publishes a sealed login as the next generation of `login`, if `fencing` is still
    /// the lease's current grant, held by `owner` and not expired (checked in the same
    /// transaction, the lease row locked). `None` when refused as stale.
    pub fn publish(&self, login: &str, owner: &str, fencing: Fencing, sealed: &[u8]) -> Result<Option<i64>> {
        self.with(|c| {
            let mut tx = c.transaction()?;
            let current = tx.query_opt(
                "SELECT 1 FROM moonauth_leases
                  WHERE name = $1 AND owner = $2 AND fencing = $3 AND expires_at >= now()
                  FOR UPDATE",
                &[&login, &owner, &fencing.0],
            )?;
            if current.is_none() {
                return Ok(None);
            }
            let generation: i64 = tx
                .query_one(
                    "INSERT INTO moonauth_generations (login, generation, fencing, sealed)
                     SELECT $1, coalesce(max(generation), 0) + 1, $2, $3
                       FROM moonauth_generations WHERE login = $1
                     RETURNING generation",
                    &[&login, &fencing.0, &sealed],
                )?
                .get(0);
            // Older generations hold spent refresh tokens: keep only the last few.
            tx.execute(
                "DELETE FROM moonauth_generations WHERE login = $1 AND generation <= $2",
                &[&login, &(generation - 3)],
            )?;
            tx.commit()?;
            Ok(Some(generation))
        })
    }

    /// The newest published generation of `login`.
    pub fn newest_generation(&self, login: &str) -> Result<Option<SealedGeneration>> {
        self.with(|c| {
            let row = c.query_opt(
                "SELECT generation, fencing, sealed FROM moonauth_generations
                  WHERE login = $1 ORDER BY generation DESC LIMIT 1",
                &[&login],
            )?;
            Ok(row.map(|r| SealedGeneration {
                generation: r.get(0),
                fencing: r.get(1),
                sealed: r.get(2),
            }))
        })
    }

    /// The key's salt and check value, creating them from `create` when the database has
    /// none yet (the first key wins; every later one is checked against it).
    pub fn key_record(&self, create: impl FnOnce() -> (Vec<u8>, Vec<u8>)) -> Result<(Vec<u8>, Vec<u8>)> {
        let existing = self.with(|c| {
            c.query_opt("SELECT salt, check_value FROM moonauth_keys WHERE id = 1", &[])
                .map(|r| r.map(|r| (r.get(0), r.get(1))))
        })?;
        if let Some(record) = existing {
            return Ok(record);
        }
        let (salt, check) = create();
        self.with(|c| {
            c.execute(
                "INSERT INTO moonauth_keys (id, salt, check_value) VALUES (1, $1, $2) ON CONFLICT (id) DO NOTHING",
                &[&salt, &check],
            )?;
            c.query_one("SELECT salt, check_value FROM moonauth_keys WHERE id = 1", &[])
                .map(|r| (r.get(0), r.get(1)))
        })
    }
}

/// The state as read, with whether a newer moonauth wrote it (then it is not overwritten).
pub struct Decoded {
    pub state: State,
    pub newer_version: Option<u64>,
}

/// An open transaction holding the state row's lock. Dropped without
/// [`commit`](Self::commit), it rolls back.
pub struct PgGuard {
    store: Arc<PgStore>,
    client: Option<Client>,
}

impl std::fmt::Debug for PgGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PgGuard({})", self.store.shown)
    }
}

impl PgGuard {
    /// The database, as it may be shown.
    pub fn shown(&self) -> &str {
        &self.store.shown
    }

    /// Writes `bytes` (the encoded state at `revision`) and commits.
    pub fn commit(mut self, revision: u64, bytes: &[u8]) -> Result<()> {
        // Some: only commit and drop take it.
        let mut client = self.client.take().expect("an open guard has its connection");
        let revision = revision.min(i64::MAX as u64) as i64;
        let written = client
            .execute(
                "UPDATE moonauth_state SET revision = $1, document = $2 WHERE id = 1",
                &[&revision, &bytes],
            )
            .and_then(|_| client.batch_execute("COMMIT"));
        let out = match written {
            Ok(()) => Ok(()),
            Err(e) => {
                let _ = client.batch_execute("ROLLBACK");
                Err(self.store.error(e))
            }
        };
        self.store.give_back(client);
        out
    }
}

impl Drop for PgGuard {
    fn drop(&mut self) {
        if let Some(mut client) = self.client.take() {
            if client.batch_execute("ROLLBACK").is_ok() {
                self.store.give_back(client);
            }
        }
    }
}

/// `text` with `password` (when known) masked, and any URL in it redacted.
fn mask(text: &str, password: Option<&str>) -> String {
    let text = match password {
        Some(p) => text.replace(p, redact::REDACTED),
        None => text.to_string(),
    };
    redact::url(&text)
}
