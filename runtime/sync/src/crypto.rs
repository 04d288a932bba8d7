//! Keys: the context key that encrypts delta payloads, and member keys that
//! sign deltas and invitations.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey};
use ed25519_zebra::{VerificationKey, batch};

use crate::ids::{MemberKey, random32};

/// Bytes of the random nonce stored in front of each ciphertext.
const NONCE_LEN: usize = 24;

/// A context's symmetric key: XChaCha20-Poly1305 over every delta payload.
///
/// ```
/// use mero_sync::ContextKey;
/// let key = ContextKey::generate();
/// let sealed = key.seal(b"hello");
/// assert_eq!(key.open(&sealed).unwrap(), b"hello");
/// assert!(ContextKey::generate().open(&sealed).is_none());
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

    /// Encrypts `plain`: a random nonce followed by the ciphertext.
    pub fn seal(&self, plain: &[u8]) -> Vec<u8> {
        let cipher = XChaCha20Poly1305::new((&self.0).into());
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::fill(&mut nonce).expect("the OS random source is available");
        let mut out = nonce.to_vec();
        out.extend(
            cipher
                .encrypt(XNonce::from_slice(&nonce), plain)
                .expect("encryption of an in-memory buffer cannot fail"),
        );
        out
    }

    /// Decrypts what [`seal`](Self::seal) produced; `None` if the key is
    /// wrong or the bytes were altered.
    pub fn open(&self, sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_LEN);
        XChaCha20Poly1305::new((&self.0).into())
            .decrypt(XNonce::from_slice(nonce), ct)
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
