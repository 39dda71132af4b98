//! Secrets at rest (Stripe keys and OAuth tokens): AES-256-GCM with ring. Each ciphertext is
//! stored with the id of the master key that sealed it, so the master key can be rotated:
//! new keys seal, old keys still open until `billingctl rotate-key` has re-sealed every row.
//! The associated data binds a ciphertext to its row, so it cannot be moved to another tenant.
//! Shared because query-api seals what the sync worker opens: both must agree on the cipher
//! and on the associated data ([`connection_context`]).

use std::collections::HashMap;

use base64::Engine as _;
use ring::{
    aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN},
    rand::{SecureRandom as _, SystemRandom},
};

/// Associated data of a Stripe connection's secret (`integration.connections`): binds the
/// ciphertext to its tenant and row. Whoever seals or opens a connection secret uses this.
pub fn connection_context(tenant: &str, connection_id: uuid::Uuid) -> String {
    format!("connection:{tenant}:{connection_id}")
}

/// Associated data of a tenant's alert-webhook signing secret (`integration.alert_webhooks`),
/// sealed by query-api and opened by the risk engine.
pub fn alert_webhook_context(tenant: &str) -> String {
    format!("alert-webhook:{tenant}")
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error("master key `{0}` must be 32 bytes, base64-encoded")]
    BadKey(String),
    #[error("no master key with id `{0}`")]
    UnknownKey(String),
    #[error("ciphertext is corrupt or was sealed for another record")]
    Open,
    #[error("no random numbers available")]
    Random,
}

/// A sealed secret: `nonce ‖ ciphertext ‖ tag`, and the id of the key that sealed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub bytes: Vec<u8>,
}

/// Seals with the first (current) master key; opens with any configured one.
pub struct Sealer {
    keys: HashMap<String, LessSafeKey>,
    current: String,
    rng: SystemRandom,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sealer")
            .field("current", &self.current)
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Sealer {
    /// `keys` are `(id, base64 of 32 bytes)`; the first one seals.
    pub fn new(keys: &[(String, String)]) -> Result<Self, CryptoError> {
        let mut map = HashMap::new();
        for (id, b64) in keys {
            let raw = base64::engine::general_purpose::STANDARD
                .decode(b64.trim())
                .map_err(|_| CryptoError::BadKey(id.clone()))?;
            let unbound =
                UnboundKey::new(&AES_256_GCM, &raw).map_err(|_| CryptoError::BadKey(id.clone()))?;
            map.insert(id.clone(), LessSafeKey::new(unbound));
        }
        let current = keys
            .first()
            .map(|(id, _)| id.clone())
            .ok_or_else(|| CryptoError::BadKey("(none)".into()))?;
        Ok(Self {
            keys: map,
            current,
            rng: SystemRandom::new(),
        })
    }

    /// Reads `BILLING_MASTER_KEYS` = `id1:base64,id2:base64` (first seals).
    pub fn from_env() -> Result<Self, CryptoError> {
        let raw = std::env::var("BILLING_MASTER_KEYS").unwrap_or_default();
        let keys: Vec<(String, String)> = raw
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(|entry| match entry.split_once(':') {
                Some((id, key)) => (id.trim().to_string(), key.trim().to_string()),
                None => ("(unnamed)".to_string(), String::new()),
            })
            .collect();
        Self::new(&keys)
    }

    pub fn current_key_id(&self) -> &str {
        &self.current
    }

    pub fn seal(&self, plaintext: &[u8], aad: &str) -> Result<Sealed, CryptoError> {
        let key = &self.keys[&self.current];
        let mut nonce = [0u8; NONCE_LEN];
        self.rng.fill(&mut nonce).map_err(|_| CryptoError::Random)?;
        let mut in_out = plaintext.to_vec();
        key.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad.as_bytes()),
            &mut in_out,
        )
        .map_err(|_| CryptoError::Random)?;
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&in_out);
        Ok(Sealed {
            key_id: self.current.clone(),
            bytes,
        })
    }

    pub fn open(&self, sealed: &Sealed, aad: &str) -> Result<Vec<u8>, CryptoError> {
        let key = self
            .keys
            .get(&sealed.key_id)
            .ok_or_else(|| CryptoError::UnknownKey(sealed.key_id.clone()))?;
        if sealed.bytes.len() < NONCE_LEN {
            return Err(CryptoError::Open);
        }
        let (nonce, rest) = sealed.bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| CryptoError::Open)?;
        let mut in_out = rest.to_vec();
        let plain = key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut in_out)
            .map_err(|_| CryptoError::Open)?;
        Ok(plain.to_vec())
    }

    /// Re-seals with the current key (rotation).
    pub fn reseal(&self, sealed: &Sealed, aad: &str) -> Result<Sealed, CryptoError> {
        self.seal(&self.open(sealed, aad)?, aad)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> String {
        base64::engine::general_purpose::STANDARD.encode([byte; 32])
    }

    #[test]
    fn seals_and_opens() {
        let s = Sealer::new(&[("k1".into(), key(1))]).unwrap();
        let sealed = s.seal(b"rk_test_secret", "tenant-a/conn-1").unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert!(
            !sealed.bytes.windows(6).any(|w| w == b"rk_tes"),
            "plaintext must not appear"
        );
        assert_eq!(
            s.open(&sealed, "tenant-a/conn-1").unwrap(),
            b"rk_test_secret"
        );
        // Fresh nonce each time.
        assert_ne!(
            s.seal(b"rk_test_secret", "x").unwrap().bytes,
            s.seal(b"rk_test_secret", "x").unwrap().bytes
        );
    }

    #[test]
    fn tampering_or_moving_a_ciphertext_fails() {
        let s = Sealer::new(&[("k1".into(), key(1))]).unwrap();
        let mut sealed = s.seal(b"secret", "tenant-a/conn-1").unwrap();
        assert_eq!(
            s.open(&sealed, "tenant-b/conn-1").unwrap_err(),
            CryptoError::Open
        );
        let last = sealed.bytes.len() - 1;
        sealed.bytes[last] ^= 1;
        assert_eq!(
            s.open(&sealed, "tenant-a/conn-1").unwrap_err(),
            CryptoError::Open
        );
        assert_eq!(
            s.open(
                &Sealed {
                    key_id: "k1".into(),
                    bytes: vec![1, 2]
                },
                "x"
            )
            .unwrap_err(),
            CryptoError::Open
        );
    }

    #[test]
    fn rotation_keeps_old_ciphertexts_readable() {
        let old = Sealer::new(&[("k1".into(), key(1))]).unwrap();
        let sealed = old.seal(b"secret", "aad").unwrap();
        let rotated = Sealer::new(&[("k2".into(), key(2)), ("k1".into(), key(1))]).unwrap();
        assert_eq!(rotated.open(&sealed, "aad").unwrap(), b"secret");
        let resealed = rotated.reseal(&sealed, "aad").unwrap();
        assert_eq!(resealed.key_id, "k2");
        let only_new = Sealer::new(&[("k2".into(), key(2))]).unwrap();
        assert_eq!(only_new.open(&resealed, "aad").unwrap(), b"secret");
        assert_eq!(
            only_new.open(&sealed, "aad").unwrap_err(),
            CryptoError::UnknownKey("k1".into())
        );
    }

    #[test]
    fn connection_context_differs_per_tenant_and_row() {
        let id = uuid::Uuid::nil();
        assert_eq!(
            connection_context("tenant-a", id),
            format!("connection:tenant-a:{id}")
        );
        assert_ne!(
            connection_context("tenant-a", id),
            connection_context("tenant-b", id)
        );
        assert_ne!(
            connection_context("tenant-a", id),
            connection_context("tenant-a", uuid::Uuid::max())
        );
    }

    #[test]
    fn bad_keys_are_refused_by_id() {
        assert_eq!(
            Sealer::new(&[("k1".into(), "short".into())]).unwrap_err(),
            CryptoError::BadKey("k1".into())
        );
        assert!(Sealer::new(&[]).is_err());
        assert!(!format!("{:?}", Sealer::new(&[("k1".into(), key(1))]).unwrap()).contains(&key(1)));
    }
}
