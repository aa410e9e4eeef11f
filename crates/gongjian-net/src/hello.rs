//! The first frame each way on a sync stream: who the sender is and the
//! certificates that admit its key, so a node can admit a peer it never
//! heard of, by the chain to the pinned root alone.

use gongjian_identity::UnitId;
use serde::{Deserialize, Serialize};

/// The first byte of a hello frame (sync messages start with their version).
pub const HELLO_TAG: u8 = 0x48; // 'H'
pub const MAX_HELLO_BYTES: usize = 64 * 1024;
pub const MAX_CHAIN: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// Sync protocol version the sender speaks.
    pub version: u8,
    /// The unit the sender claims to run as.
    pub unit: UnitId,
    /// Encoded certificate records, the sender's own first.
    pub chain: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HelloError {
    #[error("hello of {0} bytes exceeds the {MAX_HELLO_BYTES}-byte cap")]
    TooLarge(usize),
    #[error("the first frame is not a hello")]
    NotHello,
    #[error("malformed hello: {0}")]
    Malformed(String),
    #[error("hello carries {0} certificates, over the cap of {MAX_CHAIN}")]
    TooMany(usize),
    #[error("peer speaks sync version {0}, this node {1}")]
    Version(u8, u8),
}

impl Hello {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![HELLO_TAG];
        out.extend(postcard::to_stdvec(self).expect("hello always serialises"));
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Hello, HelloError> {
        if bytes.len() > MAX_HELLO_BYTES {
            return Err(HelloError::TooLarge(bytes.len()));
        }
        let (&tag, body) = bytes.split_first().ok_or(HelloError::NotHello)?;
        if tag != HELLO_TAG {
            return Err(HelloError::NotHello);
        }
        let h: Hello =
            postcard::from_bytes(body).map_err(|e| HelloError::Malformed(e.to_string()))?;
        if h.chain.len() > MAX_CHAIN {
            return Err(HelloError::TooMany(h.chain.len()));
        }
        if h.version != gongjian_sync::VERSION {
            return Err(HelloError::Version(h.version, gongjian_sync::VERSION));
        }
        Ok(h)
    }
}
