//! Sealing published logins: what the fleet's database holds of a login is never clear
//! text. The AEAD key is derived from the operator's secret (`MOONAUTH_STATE_KEY`, at
//! least 32 characters) with HKDF-SHA256 and a random salt kept in the database (made by
//! the first host, shared by all); the AEAD is ChaCha20-Poly1305 (RustCrypto) with a
//! random nonce per seal, and the login's name as associated data, so a sealed login
//! cannot be moved to another login's row. A check value sealed beside the salt tells a
//! wrong key at once, as [`Error::StateKey`], before any login is opened.
//!
//! Sealed layout: version byte `1`, 12-byte nonce, ciphertext with its 16-byte tag.

use chacha20poly1305::aead::rand_core::RngCore;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;

use crate::error::{Error, Result};
use crate::redact::Secret;

const SEAL_VERSION: u8 = 1;
const NONCE_BYTES: usize = 12;
const SALT_BYTES: usize = 32;
const KDF_INFO: &[u8] = b"moonauth fleet logins v1";
const CHECK_PLAINTEXT: &[u8] = b"moonauth state key check";
const CHECK_AAD: &[u8] = b"moonauth/key-check";

/// Seals and opens published logins with the fleet's key.
pub struct Sealer {
    cipher: ChaCha20Poly1305,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    /// The sealer for `key` with the database's salt and check value, created by `record`
    /// when the database has none (the argument makes a fresh salt and check value).
    pub fn new(
        key: &Secret,
        record: impl FnOnce(&dyn Fn() -> (Vec<u8>, Vec<u8>)) -> Result<(Vec<u8>, Vec<u8>)>,
    ) -> Result<Sealer> {
        let create = || {
            let mut salt = vec![0u8; SALT_BYTES];
            OsRng.fill_bytes(&mut salt);
            let check = Sealer::derive(key, &salt).seal_with(CHECK_AAD, CHECK_PLAINTEXT);
            (salt, check)
        };
        let (salt, check) = record(&create)?;
        let sealer = Sealer::derive(key, &salt);
        match sealer.open_with(CHECK_AAD, &check) {
            Ok(plain) if plain == CHECK_PLAINTEXT => Ok(sealer),
            _ => Err(Error::StateKey {
                reason: "it is not the key the fleet's database was set up with".into(),
            }),
        }
    }

    fn derive(key: &Secret, salt: &[u8]) -> Sealer {
        let hk = Hkdf::<Sha256>::new(Some(salt), key.expose().as_bytes());
        let mut okm = [0u8; 32];
        // 32 bytes is far below HKDF-SHA256's limit of 255 * 32.
        hk.expand(KDF_INFO, &mut okm).expect("32 bytes is a valid HKDF length");
        Sealer {
            cipher: ChaCha20Poly1305::new(Key::from_slice(&okm)),
        }
    }

    /// Seals `plain` for the login `login`.
    pub fn seal(&self, login: &str, plain: &[u8]) -> Vec<u8> {
        self.seal_with(login.as_bytes(), plain)
    }

    /// Opens what [`seal`](Self::seal) made for `login`; an error (never garbage) for
    /// another key, another login or damaged bytes.
    pub fn open(&self, login: &str, sealed: &[u8]) -> Result<Vec<u8>> {
        self.open_with(login.as_bytes(), sealed).map_err(|()| Error::StateKey {
            reason: format!("the published login {login} does not open with it (another key, or damaged)"),
        })
    }

    fn seal_with(&self, aad: &[u8], plain: &[u8]) -> Vec<u8> {
        let nonce = ChaCha20Poly1305::generate_nonce(&mut OsRng);
        // Encryption fails only for inputs beyond 256 GiB.
        let ciphertext = self
            .cipher
            .encrypt(&nonce, Payload { msg: plain, aad })
            .expect("a login is far below the AEAD's length limit");
        let mut out = Vec::with_capacity(1 + NONCE_BYTES + ciphertext.len());
        out.push(SEAL_VERSION);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out
    }

    fn open_with(&self, aad: &[u8], sealed: &[u8]) -> std::result::Result<Vec<u8>, ()> {
        if sealed.len() < 1 + NONCE_BYTES || sealed[0] != SEAL_VERSION {
            return Err(());
        }
        let nonce = Nonce::from_slice(&sealed[1..1 + NONCE_BYTES]);
        self.cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &sealed[1 + NONCE_BYTES..],
                    aad,
                },
            )
            .map_err(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sealer(key: &str, db: &std::cell::RefCell<Option<(Vec<u8>, Vec<u8>)>>) -> Result<Sealer> {
        Sealer::new(&Secret::new(key), |create| {
            let mut db = db.borrow_mut();
            Ok(db.get_or_insert_with(create).clone())
        })
    }

    #[test]
    fn a_sealed_login_opens_with_the_key_only_for_its_login_and_holds_no_clear_text() {
        let db = std::cell::RefCell::new(None);
        let a = sealer("k".repeat(32).as_str(), &db).unwrap();
        let plain = br#"{"refresh_token":"CANARYrt-123"}"#;
        let sealed = a.seal("claude/default", plain);
        assert!(!sealed.windows(6).any(|w| w == b"CANARY"));
        assert_ne!(sealed, a.seal("claude/default", plain), "a fresh nonce each time");
        // Another process with the same key and the stored salt opens it.
        let b = sealer("k".repeat(32).as_str(), &db).unwrap();
        assert_eq!(b.open("claude/default", &sealed).unwrap(), plain);
        assert!(matches!(b.open("codex/default", &sealed), Err(Error::StateKey { .. })));
        let mut damaged = sealed.clone();
        *damaged.last_mut().unwrap() ^= 1;
        assert!(b.open("claude/default", &damaged).is_err());
        assert!(b.open("claude/default", b"").is_err());
    }

    #[test]
    fn a_wrong_key_is_refused_before_any_login_is_opened() {
        let db = std::cell::RefCell::new(None);
        sealer(&"a".repeat(40), &db).unwrap();
        let err = sealer(&"b".repeat(40), &db).unwrap_err();
        assert!(matches!(err, Error::StateKey { .. }), "{err}");
        assert!(!err.to_string().contains("bbbb"), "{err}");
    }
}
