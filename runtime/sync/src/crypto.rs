//! Keys: the epoch keys that encrypt delta payloads, member keys that sign
//! deltas, and the sealing of a new epoch key to each remaining member.
//!
//! A member's ed25519 key doubles as its X25519 key for receiving epoch
//! keys (the birational map ed25519 → Curve25519, as libsodium's
//! `crypto_sign_ed25519_pk_to_curve25519`): members need no second key to
//! publish, and an invitation's one-time key can receive epoch keys the
//! same way.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use curve25519_dalek::montgomery::MontgomeryPoint;
use ed25519_dalek::{Signer, SigningKey};
use ed25519_zebra::{VerificationKey, batch};

use crate::ids::{MemberKey, random32};

/// Bytes of the random nonce stored in front of each ciphertext.
const NONCE_LEN: usize = 24;

/// A context's symmetric key for one key epoch: XChaCha20-Poly1305 over
/// every delta payload, with the delta's signed header as associated data.
///
/// ```
/// use mero_sync::ContextKey;
/// let key = ContextKey::generate();
/// let sealed = key.seal(b"hello", b"header");
/// assert_eq!(key.open(&sealed, b"header").unwrap(), b"hello");
/// assert!(key.open(&sealed, b"another header").is_none());
/// assert!(ContextKey::generate().open(&sealed, b"header").is_none());
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct ContextKey(pub [u8; 32]);

impl std::fmt::Debug for ContextKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContextKey(..)")
    }
}

impl ContextKey {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self(random32())
    }

    /// Encrypts `plain` bound to `aad`: a random nonce followed by the
    /// ciphertext. Opening needs the same `aad`.
    pub fn seal(&self, plain: &[u8], aad: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
                .expect("encryption of an in-memory buffer cannot fail"),
        );
        out
    }

    /// Decrypts what [`seal`](Self::seal) produced; `None` if the key or
    /// `aad` is wrong or the bytes were altered.
    pub fn open(&self, sealed: &[u8], aad: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }

    /// A commitment to the key that can be shown without revealing it.
    pub fn commitment(&self) -> [u8; 32] {
        let mut b = b"mero-context-key".to_vec();
        b.extend_from_slice(&self.0);
        crate::ids::sha256(&b)
    }
}

/// A member's secret signing key in one context.
#[derive(Clone)]
pub struct MemberSecret(SigningKey);

impl std::fmt::Debug for MemberSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "MemberSecret({})", self.public())
    }
}

impl MemberSecret {
    /// A fresh random key.
    pub fn generate() -> Self {
        Self::from_bytes(&random32())
    }

    /// The key from its 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(SigningKey::from_bytes(bytes))
    }

    /// The 32 secret bytes, for storage.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.to_bytes()
    }

    /// The public member key.
    pub fn public(&self) -> MemberKey {
        MemberKey(self.0.verifying_key().to_bytes())
    }

    /// Signs `domain || message`.
    pub fn sign(&self, domain: &[u8], message: &[u8]) -> Vec<u8> {
        self.0.sign(&signed(domain, message)).to_bytes().to_vec()
    }

    /// Opens this key's entry of a [`SealedKey`] set; `None` if there is
    /// none for it or it does not open.
    pub fn open_sealed(&self, context: &[u8; 32], sealed: &SealedKeys) -> Option<ContextKey> {
        let me = self.public();
        let (_, ct) = sealed.to.iter().find(|(k, _)| *k == me)?;
        let shared = MontgomeryPoint(sealed.ephemeral).mul_clamped(self.0.to_scalar_bytes());
        let wrap = wrap_key(&shared, &sealed.ephemeral, &me, context);
        let plain = wrap.open(ct, context)?;
        Some(ContextKey(plain.try_into().ok()?))
    }
}

/// A new epoch key sealed to each of its recipients (X25519 with a fresh
/// ephemeral key, then XChaCha20-Poly1305): only the holders of the
/// recipients' secret keys can open it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SealedKeys {
    /// The ephemeral X25519 public key.
    pub ephemeral: [u8; 32],
    /// Per recipient (an ed25519 public key), the sealed epoch key.
    pub to: Vec<(MemberKey, Vec<u8>)>,
}

impl SealedKeys {
    /// Seals `key` to each of `recipients` for `context`.
    ///
    /// ```
    /// use mero_sync::{ContextKey, MemberSecret};
    /// use mero_sync::crypto::SealedKeys;
    /// let (alice, mallory) = (MemberSecret::generate(), MemberSecret::generate());
    /// let key = ContextKey::generate();
    /// let sealed = SealedKeys::seal(&key, &[1; 32], &[alice.public()]);
    /// assert_eq!(alice.open_sealed(&[1; 32], &sealed), Some(key));
    /// assert_eq!(mallory.open_sealed(&[1; 32], &sealed), None);
    /// assert_eq!(alice.open_sealed(&[2; 32], &sealed), None);
    /// ```
    pub fn seal(key: &ContextKey, context: &[u8; 32], recipients: &[MemberKey]) -> Self {
        let secret = random32();
        let ephemeral = MontgomeryPoint::mul_base_clamped(secret).to_bytes();
        let to = recipients
            .iter()
            .filter_map(|r| {
                let point = ed25519_dalek::VerifyingKey::from_bytes(&r.0).ok()?;
                let shared = point.to_montgomery().mul_clamped(secret);
                let wrap = wrap_key(&shared, &ephemeral, r, context);
                Some((*r, wrap.seal(&key.0, context)))
            })
            .collect();
        Self { ephemeral, to }
    }

    /// Who can open it.
    pub fn recipients(&self) -> impl Iterator<Item = &MemberKey> {
        self.to.iter().map(|(k, _)| k)
    }
}

fn wrap_key(
    shared: &MontgomeryPoint,
    ephemeral: &[u8; 32],
    recipient: &MemberKey,
    context: &[u8; 32],
) -> ContextKey {
    let mut b = b"mero-epoch-key-v1".to_vec();
    b.extend_from_slice(shared.as_bytes());
    b.extend_from_slice(ephemeral);
    b.extend_from_slice(&recipient.0);
    b.extend_from_slice(context);
    ContextKey(crate::ids::sha256(&b))
}

/// Checks a signature made by [`MemberSecret::sign`].
///
/// Verification follows ZIP-215 (the cofactored equation, as Zcash
/// specifies it), for single and batch checks alike: a batch accepts exactly
/// the signatures that one-by-one checks accept, so two nodes that see the
/// same delta in different batches cannot disagree about it.
pub fn verify(key: &MemberKey, domain: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Some(sig) = parse_signature(signature) else {
        return false;
    };
    let Ok(vk) = VerificationKey::try_from(key.0) else {
        return false;
    };
    vk.verify(&sig, &signed(domain, message)).is_ok()
}

/// [`verify`] for many signatures at once: one multiscalar multiplication
/// for the whole batch (and one term per distinct key), about twice as fast
/// as one-by-one. Returns which ones are valid.
pub fn verify_batch(domain: &[u8], items: &[(&MemberKey, &[u8], &[u8])]) -> Vec<bool> {
    if items.len() < 2 {
        return items
            .iter()
            .map(|(k, m, s)| verify(k, domain, m, s))
            .collect();
    }
    let mut parsed = Vec::with_capacity(items.len());
    for (key, message, signature) in items {
        let Some(sig) = parse_signature(signature) else {
            parsed.push(None);
            continue;
        };
        let item: batch::Item = (key.0.into(), sig, &signed(domain, message)).into();
        parsed.push(Some(item));
    }
    let mut verifier = batch::Verifier::new();
    for item in parsed.iter().flatten() {
        verifier.queue(item.clone());
    }
    if parsed.iter().all(Option::is_some) && verifier.verify(rand::thread_rng()).is_ok() {
        return vec![true; items.len()];
    }
    // Some signature is bad: find which, one by one.
    parsed
        .into_iter()
        .map(|i| i.is_some_and(|i| i.verify_single().is_ok()))
        .collect()
}

fn parse_signature(bytes: &[u8]) -> Option<ed25519_zebra::Signature> {
    let bytes: &[u8; 64] = bytes.try_into().ok()?;
    Some(ed25519_zebra::Signature::from_bytes(bytes))
}

fn signed(domain: &[u8], message: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(domain.len() + message.len());
    m.extend_from_slice(domain);
    m.extend_from_slice(message);
    m
}
