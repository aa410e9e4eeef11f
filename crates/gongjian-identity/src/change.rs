//! Signed automerge changes: the envelope, and the header checks made on the
//! raw chunk before automerge ever parses it (`PROTOCOL.md`, "Changes").

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::encoding::{Reader, write_uleb};
use crate::error::{DecodeError, SignatureFailure};
use crate::hash::{DocId, Hash};
use crate::key::{ALG_ED25519, PublicKey, Secret, Signature};

const CHANGE_VERSION: u8 = 1;
const FLAG_SIGNED: u8 = 1;
const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const CHUNK_TYPE_CHANGE: u8 = 1;
const CHUNK_TYPE_COMPRESSED: u8 = 2;
const CHANGE_TAG: &[u8] = b"gongjian/v1/change";

/// No change chunk is larger than this.
pub const MAX_CHANGE_BYTES: usize = 256 * 1024;
/// No change has more dependencies than this.
pub const MAX_DEPS: usize = 256;
/// No column of a change decodes to more entries than this (run-length
/// encoding could otherwise declare billions of ops in a few bytes).
pub const MAX_COLUMN_ENTRIES: u64 = 1 << 20;

/// An automerge actor id in gongjian: the author's key and a 4-byte epoch.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ActorId {
    pub key: PublicKey,
    pub epoch: u32,
}

impl ActorId {
    pub fn to_bytes(&self) -> [u8; 36] {
        let mut out = [0u8; 36];
        out[..32].copy_from_slice(self.key.as_bytes());
        out[32..].copy_from_slice(&self.epoch.to_be_bytes());
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<ActorId, DecodeError> {
        if bytes.len() != 36 {
            return Err(DecodeError::ActorLength(bytes.len()));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[..32]);
        let key = PublicKey::from_bytes(key).map_err(|_| DecodeError::WeakKey)?;
        let mut epoch = [0u8; 4];
        epoch.copy_from_slice(&bytes[32..]);
        Ok(ActorId {
            key,
            epoch: u32::from_be_bytes(epoch),
        })
    }
}

impl fmt::Debug for ActorId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Actor({}/{})", self.key.fmt_short(), self.epoch)
    }
}

/// What gongjian reads of a change chunk itself, before automerge does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChangeHeader {
    /// SHA-256 over chunk type, length and body: automerge's change hash.
    pub hash: Hash,
    pub deps: Vec<Hash>,
    pub actor: ActorId,
    pub seq: u64,
}

impl ChangeHeader {
    /// Parses and checks the chunk header: magic, uncompressed type, exact
    /// length, checksum against our own hash, bounded deps, 36-byte actor, seq ≥ 1.
    pub fn parse(chunk: &[u8]) -> Result<ChangeHeader, DecodeError> {
        at_most(chunk.len(), MAX_CHANGE_BYTES)?;
        let mut r = Reader::new(chunk);
        if r.array::<4>()? != CHUNK_MAGIC {
            return Err(DecodeError::Chunk("bad magic bytes"));
        }
        let checksum: [u8; 4] = r.array()?;
        match r.u8()? {
            CHUNK_TYPE_CHANGE => {}
            CHUNK_TYPE_COMPRESSED => return Err(DecodeError::CompressedChunk),
            _ => return Err(DecodeError::Chunk("not a change chunk")),
        }
        let len = r.uleb()?;
        if len != r.remaining() as u64 {
            return Err(DecodeError::Chunk(
                "chunk length does not match its content",
            ));
        }
        let body_start = r.pos();
        let mut prefix = vec![CHUNK_TYPE_CHANGE];
        write_uleb(&mut prefix, len);
        let hash = Hash::of_parts(&[&prefix, &chunk[body_start..]]);
        if hash.0[..4] != checksum {
            return Err(DecodeError::Checksum {
                claimed: hex::encode(checksum),
                computed: hex::encode(&hash.0[..4]),
            });
        }
        let ndeps = r.uleb()?;
        if ndeps > MAX_DEPS as u64 {
            return Err(DecodeError::TooManyDeps {
                count: ndeps,
                max: MAX_DEPS,
            });
        }
        let mut deps = Vec::with_capacity(ndeps as usize);
        for _ in 0..ndeps {
            deps.push(Hash(r.array()?));
        }
        let actor_len = r.uleb()?;
        if actor_len != 36 {
            return Err(DecodeError::ActorLength(
                actor_len.min(usize::MAX as u64) as usize
            ));
        }
        let actor = ActorId::from_bytes(r.take(36)?)?;
        let seq = r.uleb()?;
        if seq == 0 {
            return Err(DecodeError::SeqZero);
        }
        check_op_columns(&mut r, column_budget(chunk.len()))?;
        Ok(ChangeHeader {
            hash,
            deps,
            actor,
            seq,
        })
    }
}

/// Reads the rest of the change header and bounds every run-length
/// encoded op column before automerge expands it.
fn check_op_columns(r: &mut Reader<'_>, budget: u64) -> Result<(), DecodeError> {
    let _start_op = r.uleb()?;
    let _time = r.sleb()?;
    let msg_len = r.uleb()?;
    if msg_len > r.remaining() as u64 {
        return Err(DecodeError::Chunk("message longer than the chunk"));
    }
    r.take(msg_len as usize)?;
    let others = r.uleb()?;
    if others > r.remaining() as u64 {
        return Err(DecodeError::Chunk("more actors than bytes"));
    }
    for _ in 0..others {
        let len = r.uleb()?;
        if len > r.remaining() as u64 {
            return Err(DecodeError::Chunk("actor longer than the chunk"));
        }
        r.take(len as usize)?;
    }
    let ncols = r.uleb()?;
    if ncols > 64 {
        return Err(DecodeError::Chunk("more than 64 op columns"));
    }
    let mut cols = Vec::with_capacity(ncols as usize);
    for _ in 0..ncols {
        let spec = r.uleb()?;
        let len = r.uleb()?;
        if len > r.remaining() as u64 {
            return Err(DecodeError::Chunk("column longer than the chunk"));
        }
        if spec & 0b1000 != 0 {
            return Err(DecodeError::CompressedChunk);
        }
        cols.push((spec & 0b111, len as usize));
    }
    for (kind, len) in cols {
        let mut col = Reader::new(r.take(len)?);
        let entries = match kind {
            // Boolean: alternating run lengths.
            4 => {
                let mut n = 0u64;
                while col.remaining() > 0 {
                    n = n.saturating_add(col.uleb()?);
                    bound(n, budget)?;
                }
                n
            }
            // Raw values: their length is bounded by the chunk.
            7 => 0,
            // Group, actor, integer, delta, string, value metadata: RLE.
            _ => rle_entries(&mut col, kind, budget)?,
        };
        bound(entries, budget)?;
    }
    Ok(())
}

/// Entries an op column may decode to: proportional to the chunk's size
/// (32 per byte, plus 4,096), and never more than [`MAX_COLUMN_ENTRIES`].
/// Run-length encoding lets a few bytes declare many ops; this keeps what a
/// peer can make a node build in proportion to what it sent.
pub fn column_budget(chunk_len: usize) -> u64 {
    (chunk_len as u64)
        .saturating_mul(32)
        .saturating_add(4096)
        .min(MAX_COLUMN_ENTRIES)
}

fn bound(n: u64, budget: u64) -> Result<(), DecodeError> {
    if n > budget {
        return Err(DecodeError::Chunk(
            "an op column decodes to more entries than the chunk's size allows",
        ));
    }
    Ok(())
}

/// Entries of a run-length encoded column; for group columns (kind 0) also
/// the sum of the group sizes, which sets the length of grouped columns.
fn rle_entries(col: &mut Reader<'_>, kind: u64, budget: u64) -> Result<u64, DecodeError> {
    let mut n = 0u64;
    let mut grouped = 0u64;
    let value = |col: &mut Reader<'_>| -> Result<u64, DecodeError> {
        if kind == 5 {
            let len = col.uleb()?;
            if len > col.remaining() as u64 {
                return Err(DecodeError::Chunk("string longer than its column"));
            }
            col.take(len as usize)?;
            Ok(0)
        } else {
            col.uleb()
        }
    };
    while col.remaining() > 0 {
        let count = col.sleb()?;
        if count > 0 {
            let v = value(col)?;
            n = n.saturating_add(count as u64);
            grouped = grouped.saturating_add(v.saturating_mul(count as u64));
        } else if count < 0 {
            for _ in 0..count.unsigned_abs() {
                let v = value(col)?;
                grouped = grouped.saturating_add(v);
            }
            n = n.saturating_add(count.unsigned_abs());
        } else {
            n = n.saturating_add(col.uleb()?);
        }
        bound(n, budget)?;
        if kind == 0 {
            bound(grouped, budget)?;
        }
    }
    Ok(n)
}

/// The exact bytes signed for a change: tag, NUL, algorithm id, document id, change hash.
pub fn change_signing_message(doc: &DocId, hash: &Hash) -> [u8; 18 + 2 + 64] {
    let mut msg = [0u8; 18 + 2 + 64];
    msg[..18].copy_from_slice(CHANGE_TAG);
    msg[18] = 0;
    msg[19] = ALG_ED25519;
    msg[20..52].copy_from_slice(doc.as_bytes());
    msg[52..].copy_from_slice(hash.as_bytes());
    msg
}

/// A raw automerge change chunk for one document, with its author's signature.
///
/// A decoded `SignedChange` has a checked header (its hash is our own) but an
/// unchecked signature: call [`SignedChange::verify`] (or verify in batch).
/// The signature is absent only for changes carried under an edge signature
/// (a same-author descendant's; see `PROTOCOL.md`).
#[derive(Clone, PartialEq, Eq)]
pub struct SignedChange {
    doc: DocId,
    sig: Option<(PublicKey, Signature)>,
    chunk: Vec<u8>,
    header: ChangeHeader,
}

impl fmt::Debug for SignedChange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedChange")
            .field("doc", &self.doc)
            .field("hash", &self.header.hash)
            .field("actor", &self.header.actor)
            .field("seq", &self.header.seq)
            .field("signed", &self.sig.is_some())
            .finish()
    }
}

impl SignedChange {
    /// Signs a chunk made locally. The chunk is checked like any received one.
    pub fn sign(doc: DocId, chunk: Vec<u8>, secret: &Secret) -> Result<SignedChange, DecodeError> {
        let header = ChangeHeader::parse(&chunk)?;
        let sig = secret.sign(&change_signing_message(&doc, &header.hash));
        Ok(SignedChange {
            doc,
            sig: Some((secret.public(), sig)),
            chunk,
            header,
        })
    }

    pub fn doc(&self) -> &DocId {
        &self.doc
    }
    pub fn header(&self) -> &ChangeHeader {
        &self.header
    }
    pub fn hash(&self) -> Hash {
        self.header.hash
    }
    pub fn chunk(&self) -> &[u8] {
        &self.chunk
    }
    pub fn signature(&self) -> Option<&(PublicKey, Signature)> {
        self.sig.as_ref()
    }

    /// The same change without its own signature (covered by an edge signature).
    pub fn without_signature(&self) -> SignedChange {
        SignedChange {
            sig: None,
            ..self.clone()
        }
    }

    /// Takes the change's own signature off, in place: an edge signature (a
    /// later change of the same actor, verified) vouches for it.
    pub fn take_signature(&mut self) -> Option<(PublicKey, Signature)> {
        self.sig.take()
    }

    /// Puts back a signature taken off with [`Self::take_signature`]. It
    /// is not checked here: [`Self::verify`] it.
    pub fn set_signature(&mut self, sig: (PublicKey, Signature)) {
        self.sig = Some(sig);
    }

    /// Checks the signer is the actor's key and the signature is strictly valid.
    pub fn verify(&self) -> Result<(), SignatureFailure> {
        let (signer, sig) = self.sig.as_ref().ok_or(SignatureFailure::Unsigned)?;
        if *signer != self.header.actor.key {
            return Err(SignatureFailure::ActorNotSigner);
        }
        signer.verify(&change_signing_message(&self.doc, &self.header.hash), sig)
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 1 + 1 + 32 + 96 + 4 + self.chunk.len());
        out.push(CHANGE_VERSION);
        out.push(ALG_ED25519);
        out.push(if self.sig.is_some() { FLAG_SIGNED } else { 0 });
        out.extend_from_slice(self.doc.as_bytes());
        if let Some((signer, sig)) = &self.sig {
            out.extend_from_slice(signer.as_bytes());
            out.extend_from_slice(&sig.0);
        }
        out.extend_from_slice(&(self.chunk.len() as u32).to_be_bytes());
        out.extend_from_slice(&self.chunk);
        out
    }

    /// The form a change takes inside a `Changes` message of its document
    /// (PROTOCOL.md §8): flags (1) ‖ signature (64, if signed) ‖ chunk. The
    /// message names the document once and the signer is always the
    /// actor's key (§3), so neither is repeated, nor the chunk's length
    /// (the message's framing has it): 70 bytes fewer than [`Self::encode`]
    /// for a signed change, 38 for an unsigned one.
    pub fn encode_compact(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1 + 64 + self.chunk.len());
        match &self.sig {
            // A signer other than the actor is refused anyway (§4 rule 1);
            // such a change is never stored, so never sent.
            Some((_, sig)) => {
                out.push(FLAG_SIGNED);
                out.extend_from_slice(&sig.0);
            }
            None => out.push(0),
        }
        out.extend_from_slice(&self.chunk);
        out
    }

    /// Reads a change in its compact form (see [`Self::encode_compact`]) as
    /// a change of `doc`, signed (if flagged) by its actor's key; checked
    /// as [`Self::decode`] checks the full envelope.
    pub fn decode_compact(doc: DocId, bytes: &[u8]) -> Result<SignedChange, DecodeError> {
        at_most(bytes.len(), MAX_CHANGE_BYTES + 65)?;
        let mut r = Reader::new(bytes);
        let flags = r.u8()?;
        if flags & !FLAG_SIGNED != 0 {
            return Err(DecodeError::Flags(flags));
        }
        let sig = if flags & FLAG_SIGNED != 0 {
            Some(Signature(r.array()?))
        } else {
            None
        };
        let chunk = r.take(r.remaining())?.to_vec();
        at_most(chunk.len(), MAX_CHANGE_BYTES)?;
        let header = ChangeHeader::parse(&chunk)?;
        Ok(SignedChange {
            doc,
            sig: sig.map(|s| (header.actor.key, s)),
            chunk,
            header,
        })
    }

    pub fn decode(bytes: &[u8]) -> Result<SignedChange, DecodeError> {
        at_most(bytes.len(), MAX_CHANGE_BYTES + 200)?;
        let mut r = Reader::new(bytes);
        let version = r.u8()?;
        if version != CHANGE_VERSION {
            return Err(DecodeError::Version(version));
        }
        let alg = r.u8()?;
        if alg != ALG_ED25519 {
            return Err(DecodeError::Algorithm(alg));
        }
        let flags = r.u8()?;
        if flags & !FLAG_SIGNED != 0 {
            return Err(DecodeError::Flags(flags));
        }
        let doc = DocId(Hash(r.array()?));
        let sig = if flags & FLAG_SIGNED != 0 {
            let signer = PublicKey::from_bytes(r.array()?).map_err(|_| DecodeError::WeakKey)?;
            Some((signer, Signature(r.array()?)))
        } else {
            None
        };
        let len = r.u32_be()? as usize;
        at_most(len, MAX_CHANGE_BYTES)?;
        let chunk = r.take(len)?.to_vec();
        r.finish()?;
        let header = ChangeHeader::parse(&chunk)?;
        Ok(SignedChange {
            doc,
            sig,
            chunk,
            header,
        })
    }
}

/// `len` bytes fit under `max`, or the decoder says how many were too many.
fn at_most(len: usize, max: usize) -> Result<(), DecodeError> {
    if len > max {
        Err(DecodeError::TooLarge { len, max })
    } else {
        Ok(())
    }
}
