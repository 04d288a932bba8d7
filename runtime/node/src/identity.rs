//! The node's long-term identity: an ed25519 key in `identity.key`.
//!
//! The libp2p peer id is derived from it. Member keys, one per context, are
//! separate (see [`crate::store::ContextSecrets`]).

use std::path::Path;

use ed25519_dalek::SigningKey;

use crate::config::write_private;
use crate::error::NodeError;
use crate::ids::{MemberKey, random32};

/// File name of the key inside the home directory.
pub const IDENTITY_FILE: &str = "identity.key";

/// The node's signing key.
pub struct NodeIdentity {
    key: SigningKey,
}

impl NodeIdentity {
    /// Generates a key and writes it (hex, owner-only) to `home/identity.key`.
    pub fn create(home: &Path) -> Result<Self, NodeError> {
        let secret = random32();
        let path = home.join(IDENTITY_FILE);
        write_private(&path, hex::encode(secret).as_bytes())
            .map_err(|e| NodeError::Corrupt(format!("{}: {e}", path.display())))?;
        Ok(Self {
            key: SigningKey::from_bytes(&secret),
        })
    }

    /// Reads `home/identity.key`.
    pub fn load(home: &Path) -> Result<Self, NodeError> {
        let path = home.join(IDENTITY_FILE);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            NodeError::Corrupt(format!(
                "{}: {e}; a node home is created by `merod init`",
                path.display()
            ))
        })?;
        let bytes: [u8; 32] = hex::decode(text.trim())
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| {
                NodeError::Corrupt(format!("{} is not a 32-byte hex key", path.display()))
            })?;
        Ok(Self {
            key: SigningKey::from_bytes(&bytes),
        })
    }

    /// Reads `home/identity.key`, creating it (and `home`) if there is none yet.
    pub fn load_or_create(home: &Path) -> Result<Self, NodeError> {
        if home.join(IDENTITY_FILE).exists() {
            return Self::load(home);
        }
        std::fs::create_dir_all(home)
            .map_err(|e| NodeError::Corrupt(format!("{}: {e}", home.display())))?;
        Self::create(home)
    }

    /// The 32 secret bytes (the libp2p identity is derived from them).
    pub fn secret(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    /// The public key.
    pub fn public(&self) -> MemberKey {
        MemberKey(self.key.verifying_key().to_bytes())
    }
}
