//! The fleet refresh lease and the published logins, on the fleet's PostgreSQL database
//! (`MOONAUTH_STATE_URL`): one holder per [`LoginKey`] across every host, an expiry in
//! database time, and a fencing number that grows with every grant. [`FleetGrant`] is the
//! held lease; every publish of a refreshed login carries its fencing number and is
//! refused when a newer grant exists or the lease expired (a holder paused past its lease
//! must not publish). Published logins are numbered generations, sealed with the fleet's
//! key ([`crate::state::seal`]).
//!
//! [`Fleet`] connects when first needed: a host whose database is unreachable goes on
//! with the logins its volumes hold, and refreshes nothing (no fleet lease, no refresh).

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::FleetSettings;
use crate::error::{Error, Result};
use crate::lease::{LeaseError, LoginKey};
use crate::state::postgres::{Fencing, PgStore};
use crate::state::seal::Sealer;

/// The fleet's database and key, connected on first use.
pub struct Fleet {
    settings: FleetSettings,
    store: Mutex<Option<Arc<PgStore>>>,
    sealer: Mutex<Option<Arc<Sealer>>>,
}

impl std::fmt::Debug for Fleet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Fleet({})", crate::redact::url(self.settings.url.value.expose()))
    }
}

/// A published login, opened.
#[derive(Debug, Clone)]
pub struct Generation {
    pub number: i64,
    /// The login file's bytes (secret: never logged).
    pub bytes: Vec<u8>,
}

impl Fleet {
    /// The fleet the settings name; nothing connects yet.
    pub fn new(settings: FleetSettings) -> Fleet {
        Fleet {
            settings,
            store: Mutex::new(None),
            sealer: Mutex::new(None),
        }
    }

    /// The database URL as it may be shown.
    pub fn shown(&self) -> String {
        crate::redact::url(self.settings.url.value.expose())
    }

    /// The database, connecting (and migrating) on first use.
    pub fn store(&self) -> Result<Arc<PgStore>> {
        let mut slot = self.store.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = slot.as_ref() {
            return Ok(Arc::clone(store));
        }
        let store = Arc::new(PgStore::connect(&self.settings.url.value)?);
        *slot = Some(Arc::clone(&store));
        Ok(store)
    }

    fn sealer(&self) -> Result<Arc<Sealer>> {
        let mut slot = self.sealer.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(sealer) = slot.as_ref() {
            return Ok(Arc::clone(sealer));
        }
        let key = self.settings.key.as_ref().ok_or_else(|| Error::StateKey {
            reason: "neither MOONAUTH_STATE_KEY nor MOONAUTH_STATE_KEY_FILE is set; a fleet shares logins only sealed"
                .into(),
        })?;
        let store = self.store()?;
        let sealer = Arc::new(Sealer::new(&key.value, |create| store.key_record(create))?);
        *slot = Some(Arc::clone(&sealer));
        Ok(sealer)
    }

    /// How long a grant lasts.
    pub fn ttl(&self) -> Duration {
        self.settings.lease_ttl.value
    }

    /// Waits until `deadline` for the fleet lease of `key`.
    pub fn acquire(&self, key: &LoginKey, deadline: Instant, timeout: Duration) -> Result<FleetGrant, LeaseError> {
        let name = login_name(key);
        let lock = PathBuf::from(format!("the fleet lease {name} in {}", self.shown()));
        let io = |e: Error| LeaseError::Io {
            lock: lock.clone(),
            reason: e.to_string(),
        };
        let store = self.store().map_err(io)?;
        let owner = format!("{}:{}:{:08x}", super::hostname(), std::process::id(), fastrand::u32(..));
        let mut pause = Duration::from_millis(20);
        loop {
            if let Some(fencing) = store.try_lease(&name, &owner, self.ttl()).map_err(io)? {
                tracing::debug!(lease = %name, fencing = fencing.0, "took the fleet lease");
                return Ok(FleetGrant {
                    store,
                    name,
                    owner,
                    fencing,
                    ttl: self.ttl(),
                    released: false,
                });
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(LeaseError::Busy {
                    lock,
                    waited: timeout,
                    holder: store.lease_holder(&name).ok().flatten(),
                });
            }
            let jitter = Duration::from_millis(fastrand::u64(0..=pause.as_millis() as u64));
            std::thread::sleep((pause + jitter).min(deadline - now));
            pause = (pause * 2).min(Duration::from_millis(250));
        }
    }

    /// The newest generation's number of `key`, without opening it (cheap: one row).
    pub fn newest_number(&self, key: &LoginKey) -> Result<Option<i64>> {
        Ok(self.store()?.newest_generation(&login_name(key))?.map(|g| g.generation))
    }

    /// The newest generation of `key`, opened with the fleet's key.
    pub fn newest(&self, key: &LoginKey) -> Result<Option<Generation>> {
        let name = login_name(key);
        let Some(sealed) = self.store()?.newest_generation(&name)? else {
            return Ok(None);
        };
        let bytes = self.sealer()?.open(&name, &sealed.sealed)?;
        Ok(Some(Generation {
            number: sealed.generation,
            bytes,
        }))
    }

    /// Publishes `bytes` as the next generation of `key` under `grant`; `None` when the
    /// grant is stale (expired, or taken over since).
    pub fn publish(&self, key: &LoginKey, grant: &FleetGrant, bytes: &[u8]) -> Result<Option<i64>> {
        let name = login_name(key);
        let sealed = self.sealer()?.seal(&name, bytes);
        grant.store.publish(&name, &grant.owner, grant.fencing, &sealed)
    }

    /// Checks that the key opens the fleet's logins (or sets the key up on a new database).
    pub fn check_key(&self) -> Result<()> {
        self.sealer().map(drop)
    }
}

/// The name of a login's lease and generations: `runtime/account`, with `default` for a
/// login no stored account names (the configured login directory).
pub fn login_name(key: &LoginKey) -> String {
    format!("{}/{}", key.runtime, key.account.as_deref().unwrap_or("default"))
}

/// A held fleet lease. Released (if still this grant) when dropped.
pub struct FleetGrant {
    store: Arc<PgStore>,
    name: String,
    owner: String,
    fencing: Fencing,
    ttl: Duration,
    released: bool,
}

impl FleetGrant {
    /// The fencing number of this grant.
    pub fn fencing(&self) -> i64 {
        self.fencing.0
    }

    /// Extends the grant by its lifetime when it is still current; false when it expired
    /// or was taken over (then nothing may be refreshed or published under it).
    pub fn confirm(&self) -> bool {
        self.store
            .extend_lease(&self.name, &self.owner, self.fencing, self.ttl)
            .unwrap_or(false)
    }
}

impl Drop for FleetGrant {
    fn drop(&mut self) {
        if !self.released {
            self.released = true;
            if let Err(e) = self.store.release_lease(&self.name, &self.owner, self.fencing) {
                // It expires by itself.
                tracing::warn!(lease = %self.name, "could not release the fleet lease: {e}");
            }
        }
    }
}
