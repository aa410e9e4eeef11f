//! The envelope every signed record travels in (`PROTOCOL.md`, "Signed records").

use crate::encoding::Reader;
use crate::error::{DecodeError, SignatureFailure};
use crate::hash::Hash;
use crate::key::{ALG_ED25519, PublicKey, Secret, Signature};

/// Envelope format version.
const RECORD_VERSION: u8 = 1;
/// Fixed part: version, alg, kind, signer, signature, body length.
const HEADER_LEN: usize = 1 + 1 + 1 + 32 + 64 + 4;
/// No signed record is larger than this (revocation cuts included).
pub const MAX_RECORD_BYTES: usize = 1 << 20;

/// The type of a signed record; each has its own signing tag.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordKind {
    Certificate = 1,
    Revocation = 2,
    KeyAdd = 3,
    Recovery = 4,
    Genesis = 5,
    Heads = 6,
}

impl RecordKind {
    pub const ALL: [RecordKind; 6] = [
        RecordKind::Certificate,
        RecordKind::Revocation,
        RecordKind::KeyAdd,
        RecordKind::Recovery,
        RecordKind::Genesis,
        RecordKind::Heads,
    ];

    /// The domain-separation tag signed in front of the body.
    pub fn tag(&self) -> &'static [u8] {
        match self {
            RecordKind::Certificate => b"gongjian/v1/certificate",
            RecordKind::Revocation => b"gongjian/v1/revocation",
            RecordKind::KeyAdd => b"gongjian/v1/key-add",
            RecordKind::Recovery => b"gongjian/v1/recovery",
            RecordKind::Genesis => b"gongjian/v1/genesis",
            RecordKind::Heads => b"gongjian/v1/heads",
        }
    }

    pub fn from_u8(v: u8) -> Result<Self, DecodeError> {
        RecordKind::ALL
            .into_iter()
            .find(|k| *k as u8 == v)
            .ok_or(DecodeError::RecordKind(v))
    }
}

/// A signed record: kind, signer, signature and the postcard-encoded body.
///
/// Decoding checks the layout and the signer's key; [`SignedRecord::verify`]
/// checks the signature. Nothing reads the body before both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedRecord {
    kind: RecordKind,
    signer: PublicKey,
    sig: Signature,
    body: Vec<u8>,
}

/// The exact bytes signed for a record: tag, NUL, algorithm id, body.
fn signing_message(kind: RecordKind, body: &[u8]) -> Vec<u8> {
    let tag = kind.tag();
    let mut msg = Vec::with_capacity(tag.len() + 2 + body.len());
    msg.extend_from_slice(tag);
    msg.push(0);
    msg.push(ALG_ED25519);
    msg.extend_from_slice(body);
    msg
}

impl SignedRecord {
    pub(crate) fn sign(kind: RecordKind, body: Vec<u8>, secret: &Secret) -> SignedRecord {
        let sig = secret.sign(&signing_message(kind, &body));
        SignedRecord {
            kind,
            signer: secret.public(),
            sig,
            body,
        }
    }

    pub fn kind(&self) -> RecordKind {
        self.kind
    }
    pub fn signer(&self) -> &PublicKey {
        &self.signer
    }
    pub fn signature(&self) -> &Signature {
        &self.sig
    }
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The message the signature covers.
    pub fn message(&self) -> Vec<u8> {
        signing_message(self.kind, &self.body)
    }

    /// Strict verification of the signature.
    pub fn verify(&self) -> Result<(), SignatureFailure> {
        self.signer.verify(&self.message(), &self.sig)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_LEN + self.body.len());
        out.push(RECORD_VERSION);
        out.push(ALG_ED25519);
        out.push(self.kind as u8);
        out.extend_from_slice(self.signer.as_bytes());
        out.extend_from_slice(&self.sig.0);
        out.extend_from_slice(&(self.body.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.body);
        out
    }

    /// The record's id: SHA-256 of its encoding.
    pub fn hash(&self) -> Hash {
        Hash::of(&self.encode())
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedRecord, DecodeError> {
        if bytes.len() > MAX_RECORD_BYTES {
            return Err(DecodeError::TooLarge {
                len: bytes.len(),
                max: MAX_RECORD_BYTES,
            });
        }
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != RECORD_VERSION {
            return Err(DecodeError::Version(version));
        }
        let alg = r.u8()?;
        if alg != ALG_ED25519 {
            return Err(DecodeError::Algorithm(alg));
        }
        let kind = RecordKind::from_u8(r.u8()?)?;
        let signer = PublicKey::from_bytes(r.array()?).map_err(|_| DecodeError::WeakKey)?;
        let sig = Signature(r.array()?);
        let len = r.u32_be()? as usize;
        let body = r.take(len)?.to_vec();
        r.finish()?;
        Ok(SignedRecord {
            kind,
            signer,
            sig,
            body,
        })
    }
}
