//! Keys: the context key that encrypts delta payloads, and member keys that
//! sign deltas and invitations.

use chacha20poly1305::aead::{Aead, KeyInit};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};

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
        let mut m = domain.to_vec();
        m.extend_from_slice(message);
        self.0.sign(&m).to_bytes().to_vec()
    }
}

/// Checks a signature made by [`MemberSecret::sign`].
pub fn verify(key: &MemberKey, domain: &[u8], message: &[u8], signature: &[u8]) -> bool {
    let Ok(vk) = VerifyingKey::from_bytes(&key.0) else {
        return false;
    };
    let Ok(sig) = ed25519_dalek::Signature::from_slice(signature) else {
        return false;
    };
    let mut m = domain.to_vec();
    m.extend_from_slice(message);
    vk.verify(&m, &sig).is_ok()
}
