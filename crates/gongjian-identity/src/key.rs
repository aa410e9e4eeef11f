use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{KeyParseError, SignatureFailure};

/// Algorithm id of ed25519 in every signed record (`PROTOCOL.md`, "Algorithms").
pub const ALG_ED25519: u8 = 1;

const TEXT_PREFIX: &str = "ed25519:";

/// An ed25519 public key that is a valid, non-weak curve point.
///
/// Construction always checks the point, so a `PublicKey` in hand is never of
/// small order: weak keys are refused at every entry (text, records, files).
/// It is torsion-free too, which `verify_many`'s batch equation relies on
/// to agree with `verify_strict`: any new constructor must check it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey([u8; 32]);

/// Keys already checked: a node sees few distinct keys (one per author) and
/// decodes each in every stored change, and the torsion check is a full
/// scalar multiplication. Bounded: cleared when full.
static CHECKED: std::sync::LazyLock<std::sync::Mutex<std::collections::HashSet<[u8; 32]>>> =
    std::sync::LazyLock::new(Default::default);
const CHECKED_MAX: usize = 1 << 16;

impl PublicKey {
    /// Checks that the bytes are a point of the curve and not of small order.
    pub fn from_bytes(bytes: [u8; 32]) -> Result<Self, KeyParseError> {
        if let Ok(set) = CHECKED.lock()
            && set.contains(&bytes)
        {
            return Ok(PublicKey(bytes));
        }
        let vk = VerifyingKey::from_bytes(&bytes).map_err(|_| KeyParseError::Weak)?;
        if vk.is_weak() || !vk.to_edwards().is_torsion_free() {
            return Err(KeyParseError::Weak);
        }
        if let Ok(mut set) = CHECKED.lock() {
            if set.len() >= CHECKED_MAX {
                set.clear();
            }
            set.insert(bytes);
        }
        Ok(PublicKey(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    pub(crate) fn verifying_key(&self) -> VerifyingKey {
        // The bytes were checked when the value was built.
        VerifyingKey::from_bytes(&self.0).unwrap_or_else(|_| unreachable!("checked key"))
    }

    /// Strict verification (`verify_strict`): rejects small-order R, non-canonical S.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureFailure> {
        let s = ed25519_dalek::Signature::from_bytes(&sig.0);
        self.verifying_key()
            .verify_strict(msg, &s)
            .map_err(|_| SignatureFailure::Invalid)
    }

    /// The libp2p peer id derived from this same key.
    #[cfg(feature = "libp2p")]
    pub fn peer_id(&self) -> libp2p_identity::PeerId {
        let pk = libp2p_identity::ed25519::PublicKey::try_from_bytes(&self.0)
            .unwrap_or_else(|_| unreachable!("checked key"));
        libp2p_identity::PublicKey::from(pk).to_peer_id()
    }

    /// The key a libp2p peer id was derived from, if it is an ed25519 key
    /// inlined in the id (as every gongjian node's is).
    #[cfg(feature = "libp2p")]
    pub fn from_peer_id(peer: &libp2p_identity::PeerId) -> Option<PublicKey> {
        let mh = peer.as_ref();
        if mh.code() != 0 {
            return None; // hashed, not inlined: not an ed25519 key
        }
        let pk = libp2p_identity::PublicKey::try_decode_protobuf(mh.digest()).ok()?;
        let ed = pk.try_into_ed25519().ok()?;
        PublicKey::from_bytes(ed.to_bytes()).ok()
    }

    /// First 5 bytes in hex, for logs.
    pub fn fmt_short(&self) -> String {
        hex::encode(&self.0[..5])
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{TEXT_PREFIX}{}", hex::encode(self.0))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.fmt_short())
    }
}

impl FromStr for PublicKey {
    type Err = KeyParseError;
    /// Accepts `ed25519:<64 hex>` (the form `id` prints) or the bare 64 hex digits.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let hexpart = s.trim().strip_prefix(TEXT_PREFIX).unwrap_or(s.trim());
        let mut out = [0u8; 32];
        hex::decode_to_slice(hexpart, &mut out).map_err(|_| KeyParseError::Format)?;
        PublicKey::from_bytes(out)
    }
}

impl Serialize for PublicKey {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

impl<'de> Deserialize<'de> for PublicKey {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let bytes = <[u8; 32]>::deserialize(d)?;
        PublicKey::from_bytes(bytes).map_err(serde::de::Error::custom)
    }
}

/// A 64-byte ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({}…)", hex::encode(&self.0[..5]))
    }
}

/// A secret signing key. Zeroized on drop, never printed.
#[derive(Clone)]
pub struct Secret(SigningKey);

impl Secret {
    /// A fresh key from the operating system's randomness, re-drawn in the
    /// (negligible) case that its public half would be refused as weak.
    pub fn generate() -> Secret {
        loop {
            let mut seed = [0u8; 32];
            rand::fill(&mut seed);
            let s = Secret::from_seed(seed);
            if PublicKey::from_bytes(s.0.verifying_key().to_bytes()).is_ok() {
                return s;
            }
        }
    }

    pub fn from_seed(seed: [u8; 32]) -> Secret {
        Secret(SigningKey::from_bytes(&seed))
    }

    pub fn seed(&self) -> &[u8; 32] {
        self.0.as_bytes()
    }

    pub fn public(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        Signature(self.0.sign(msg).to_bytes())
    }

    /// The libp2p keypair made of this same key, so PeerId = this key.
    #[cfg(feature = "libp2p")]
    pub fn libp2p_keypair(&self) -> libp2p_identity::Keypair {
        let mut seed = *self.0.as_bytes();
        let sk = libp2p_identity::ed25519::SecretKey::try_from_bytes(&mut seed)
            .unwrap_or_else(|_| unreachable!("32 bytes"));
        libp2p_identity::Keypair::from(libp2p_identity::ed25519::Keypair::from(sk))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret(public {}, ***)", self.public().fmt_short())
    }
}
