//! Sneakernet bundles (PROTOCOL.md §10): the signed records and changes a
//! unit is entitled to, in one file signed by the exporting node, for
//! offices whose networks are down for days.
//!
//! Import is all or nothing against tampering: the file's signature, every
//! record and every change are checked (the last in a dry run on a
//! checkpoint of the store) before anything reaches the real store. The
//! head (sender, target, records) comes first and is small: the sender is
//! admitted before a byte of the changes is decoded.
//!
//! All or nothing is a guard against tampering, not a transaction: an
//! import killed half way keeps the chunks it had made durable (each is an
//! ordinary verified ingest), and importing the same bundle again completes
//! it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use gongjian_identity::{
    ActorId, DocId, Hash, PublicKey, Signature, SignedChange, SignedRecord, UnitId,
};
use gongjian_model::{Membership, verify_record};
use gongjian_store::Store;
use gongjian_sync::{VersionVector, causal_order, vouched_prefix};
use serde::{Deserialize, Serialize};

use crate::error::{EngineError, InvalidChange};
use crate::replica::Replica;

/// First bytes of a bundle file.
pub const BUNDLE_MAGIC: &[u8; 8] = b"GJBUNDLE";
/// First bytes of a peer-state ("have") file.
pub const STATE_MAGIC: &[u8; 8] = b"GJHAVE\0\0";
/// The bundle format this build writes and reads.
pub const BUNDLE_VERSION: u16 = 2;
/// Bundles larger than this are refused before they are read.
pub const MAX_BUNDLE_BYTES: u64 = 2 << 30;
/// A chunk of one document's changes is ingested in one call; the exporter
/// closes a chunk at the first cut point past these.
const CHUNK_BYTES: usize = 8 << 20;
const CHUNK_CHANGES: usize = 8192;
/// Import refuses a chunk of more changes than this.
pub const MAX_CHUNK: usize = 65_536;
/// The head (sender, target and records) is refused past this size.
pub const MAX_HEAD_BYTES: usize = 64 << 20;
const SIGNING_CONTEXT: &[u8] = b"gongjian-bundle-v2";
const HEADER: usize = 8 + 2 + 32 + 64 + 4;

/// Why a bundle or a state file was refused. Nothing was imported.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    #[error("not a gongjian bundle (the file does not start with {expected:?})")]
    NotABundle { expected: &'static str },
    #[error("bundle format version {found}; this build reads version {BUNDLE_VERSION}")]
    Version { found: u16 },
    #[error("the file is truncated or malformed: {0}")]
    Malformed(String),
    #[error("tampered: the bundle's signature does not verify (some byte changed since export)")]
    BadSignature,
    #[error(
        "foreign: the bundle was signed by key {signer}, which has no valid certificate chain to this federation's root ({why})"
    )]
    Foreign { signer: String, why: String },
    #[error(
        "the bundle says it comes from unit {claimed}, but its signing key belongs to unit {actual}"
    )]
    WrongSender { claimed: UnitId, actual: UnitId },
    #[error(
        "the bundle was made for unit {made_for}; this node is unit {this} (export it again with --for {this})"
    )]
    WrongUnit { made_for: UnitId, this: UnitId },
    #[error("tampered: record {index} of the bundle does not verify: {why}")]
    BadRecord { index: usize, why: String },
    #[error("tampered: document {doc}, change {index}: {why}")]
    BadChange {
        doc: String,
        index: usize,
        why: InvalidChange,
    },
    #[error(
        "the bundle would be {bytes} bytes, over the {MAX_BUNDLE_BYTES} any node imports: export in steps, each with --have of the receiver's state after the last"
    )]
    TooLarge { bytes: usize },
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("scratch copy of the store: {0}")]
    Scratch(std::io::Error),
}

/// Who sent the bundle, for whom, and the membership records it carries:
/// everything needed to admit the sender, decoded before the changes.
#[derive(Debug, Serialize, Deserialize)]
struct Head {
    from: UnitId,
    made_for: UnitId,
    created_at: u64,
    #[serde(deserialize_with = "capped::records")]
    records: Vec<Vec<u8>>,
}

/// One document's changes. The changes section is a sequence of these,
/// decoded one at a time: memory holds one document's slices, never the
/// whole file's.
#[derive(Debug, Serialize, Deserialize)]
struct DocChanges<'a> {
    doc: [u8; 32],
    /// Encoded changes in causal order, each chunk ending at a point where
    /// every actor's last change is signed.
    #[serde(borrow, deserialize_with = "capped::chunks")]
    chunks: Vec<Vec<&'a [u8]>>,
}

/// Deserializers that refuse, while decoding, sequences longer than a bound
/// or elements too short to be what they claim: a file of zero bytes cannot
/// make the decoder allocate millions of empty vectors.
mod capped {
    use std::fmt;
    use std::marker::PhantomData;

    use serde::Deserializer;
    use serde::de::{Error, SeqAccess, Visitor};

    /// Records in one bundle.
    pub const MAX_RECORDS: usize = 1 << 20;
    /// A signed record is never shorter than this.
    pub const MIN_RECORD: usize = 64;
    /// Chunks of one document.
    pub const MAX_CHUNKS: usize = 1 << 16;
    /// Changes of one document in one bundle.
    pub const MAX_DOC_CHANGES: usize = 1 << 22;
    /// A signed change is never shorter than this.
    pub const MIN_CHANGE: usize = 64;

    struct Bytes<T>(usize, PhantomData<T>);

    impl<'de, T: serde::Deserialize<'de> + AsRef<[u8]>> Visitor<'de> for Bytes<T> {
        type Value = Vec<T>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "a sequence of byte strings of at least {} bytes", self.0)
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<T>, A::Error> {
            let mut out = Vec::new();
            while let Some(b) = seq.next_element::<T>()? {
                if b.as_ref().len() < self.0 {
                    return Err(A::Error::custom(format!(
                        "an element of {} bytes, shorter than any valid one",
                        b.as_ref().len()
                    )));
                }
                if out.len() == MAX_RECORDS.max(MAX_DOC_CHANGES) {
                    return Err(A::Error::custom("too many elements"));
                }
                out.push(b);
            }
            Ok(out)
        }
    }

    pub fn records<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<u8>>, D::Error> {
        let v = d.deserialize_seq(Bytes::<Vec<u8>>(MIN_RECORD, PhantomData))?;
        if v.len() > MAX_RECORDS {
            return Err(D::Error::custom(format!("over {MAX_RECORDS} records")));
        }
        Ok(v)
    }

    struct Chunks;

    impl<'de> Visitor<'de> for Chunks {
        type Value = Vec<Vec<&'de [u8]>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("chunks of encoded changes")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            struct Chunk;
            impl<'de> serde::de::DeserializeSeed<'de> for Chunk {
                type Value = Vec<&'de [u8]>;
                fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
                    d.deserialize_seq(Bytes::<&'de [u8]>(MIN_CHANGE, PhantomData))
                }
            }
            let mut out: Vec<Vec<&'de [u8]>> = Vec::new();
            let mut total = 0usize;
            while let Some(chunk) = seq.next_element_seed(Chunk)? {
                total += chunk.len();
                if out.len() >= MAX_CHUNKS || total > MAX_DOC_CHANGES {
                    return Err(A::Error::custom(format!(
                        "over {MAX_CHUNKS} chunks or {MAX_DOC_CHANGES} changes in one document"
                    )));
                }
                out.push(chunk);
            }
            Ok(out)
        }
    }

    pub fn chunks<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Vec<&'de [u8]>>, D::Error> {
        d.deserialize_seq(Chunks)
    }
}

/// What a node holds, for an exporter to send only what it lacks.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PeerState {
    pub unit: Option<UnitId>,
    pub records: BTreeSet<[u8; 32]>,
    pub docs: BTreeMap<[u8; 32], Vec<(Vec<u8>, u64)>>,
}

impl PeerState {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = STATE_MAGIC.to_vec();
        out.extend(postcard::to_stdvec(self).unwrap_or_default());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<PeerState, BundleError> {
        let body = bytes
            .strip_prefix(STATE_MAGIC.as_slice())
            .ok_or(BundleError::NotABundle { expected: "GJHAVE" })?;
        postcard::from_bytes(body).map_err(|e| BundleError::Malformed(e.to_string()))
    }

    fn version_vector(&self, doc: &DocId) -> Result<VersionVector, BundleError> {
        let mut vv = VersionVector::new();
        for (actor, seq) in self.docs.get(doc.as_bytes()).into_iter().flatten() {
            let actor = ActorId::from_bytes(actor)
                .map_err(|e| BundleError::Malformed(format!("state file: {e}")))?;
            vv.insert(actor, *seq);
        }
        Ok(vv)
    }
}

/// What an export wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub made_for: Option<UnitId>,
    pub records: usize,
    pub documents: usize,
    pub changes: usize,
    pub bytes: usize,
}

/// What an import did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportSummary {
    pub from: Option<UnitId>,
    pub records_new: usize,
    /// Records whose signer this node cannot place yet (left out).
    pub records_unknown: usize,
    pub documents: usize,
    pub changes_accepted: usize,
    pub changes_already_held: usize,
    /// Held in quarantine, waiting for dependencies.
    pub changes_pending: usize,
    /// Held in quarantine, refused by the acceptance rule (e.g. a revocation
    /// this node knows and the exporter did not).
    pub changes_rejected: usize,
    /// Documents outside this unit's audience, left out.
    pub documents_skipped: usize,
    /// Not kept: the quarantine was full (import again once it drains).
    pub changes_dropped: usize,
}

/// A bundle whose signature verified and whose head decoded (membership not
/// yet checked, changes not yet decoded).
#[derive(Debug)]
pub struct Bundle<'a> {
    signer: PublicKey,
    head: Head,
    docs: &'a [u8],
}

fn signed_message(body: &[u8]) -> Hash {
    Hash::of_parts(&[SIGNING_CONTEXT, &BUNDLE_VERSION.to_be_bytes(), body])
}

impl<'a> Bundle<'a> {
    /// Parses a bundle file's head and checks its signature; the changes are
    /// decoded only once the sender is admitted ([`Replica::import_bundle`]).
    pub fn parse(bytes: &'a [u8]) -> Result<Bundle<'a>, BundleError> {
        if bytes.len() < 8 || &bytes[..8] != BUNDLE_MAGIC {
            return Err(BundleError::NotABundle {
                expected: "GJBUNDLE",
            });
        }
        if bytes.len() < HEADER {
            return Err(BundleError::Malformed(format!(
                "{} bytes, shorter than the {HEADER}-byte header",
                bytes.len()
            )));
        }
        let version = u16::from_be_bytes([bytes[8], bytes[9]]);
        if version != BUNDLE_VERSION {
            return Err(BundleError::Version { found: version });
        }
        let key: [u8; 32] = bytes[10..42].try_into().unwrap_or([0; 32]);
        let sig: [u8; 64] = bytes[42..106].try_into().unwrap_or([0; 64]);
        let signer = PublicKey::from_bytes(key).map_err(|_| BundleError::BadSignature)?;
        let head_len = u32::from_be_bytes([bytes[106], bytes[107], bytes[108], bytes[109]]);
        let head_len = head_len as usize;
        let raw = &bytes[HEADER - 4..];
        if head_len > MAX_HEAD_BYTES || head_len > bytes.len() - HEADER {
            return Err(BundleError::Malformed(format!(
                "the head says {head_len} bytes; {} remain and at most {MAX_HEAD_BYTES} are allowed",
                bytes.len() - HEADER
            )));
        }
        signer
            .verify(signed_message(raw).as_bytes(), &Signature(sig))
            .map_err(|_| BundleError::BadSignature)?;
        let (head, rest): (Head, &[u8]) =
            postcard::take_from_bytes(&bytes[HEADER..HEADER + head_len])
                .map_err(|e| BundleError::Malformed(format!("head: {e}")))?;
        if !rest.is_empty() {
            return Err(BundleError::Malformed(format!(
                "head: {} bytes after its end",
                rest.len()
            )));
        }
        Ok(Bundle {
            signer,
            head,
            docs: &bytes[HEADER + head_len..],
        })
    }

    /// The changes, one document at a time (borrowing from the file),
    /// decoded only once the sender is admitted.
    fn docs(&self) -> impl Iterator<Item = Result<DocChanges<'a>, BundleError>> + 'a {
        let mut rest: &'a [u8] = self.docs;
        let mut index = 0usize;
        std::iter::from_fn(move || {
            if rest.is_empty() {
                return None;
            }
            match postcard::take_from_bytes::<DocChanges<'a>>(rest) {
                Ok((d, r)) => {
                    rest = r;
                    index += 1;
                    Some(Ok(d))
                }
                Err(e) => {
                    rest = &[];
                    Some(Err(BundleError::Malformed(format!(
                        "changes, document {index}: {e}"
                    ))))
                }
            }
        })
    }

    /// Decodes every change of the bundle without importing anything: the
    /// documents and changes it holds, or what is malformed and where.
    /// Signatures of changes are not checked here (import does).
    pub fn count_changes(&self) -> Result<(usize, usize), BundleError> {
        let (mut docs, mut changes) = (0, 0);
        for d in self.docs() {
            let d = d?;
            let id = DocId(Hash(d.doc));
            for (index, raw) in d.chunks.iter().flatten().enumerate() {
                let c = SignedChange::decode(raw).map_err(|e| BundleError::BadChange {
                    doc: id.to_string(),
                    index,
                    why: InvalidChange::Decode(e),
                })?;
                if *c.doc() != id {
                    return Err(BundleError::Malformed(format!(
                        "document {id}, change {index}: it names document {}",
                        c.doc()
                    )));
                }
                changes += 1;
            }
            docs += 1;
        }
        Ok((docs, changes))
    }

    /// Encodes and signs a bundle. `docs` holds, per document, chunks of
    /// encoded changes in causal order, each ingested in one call.
    pub fn seal(
        secret: &gongjian_identity::Secret,
        from: UnitId,
        made_for: UnitId,
        created_at: u64,
        records: Vec<Vec<u8>>,
        docs: Vec<(DocId, Vec<Vec<Vec<u8>>>)>,
    ) -> Result<Vec<u8>, BundleError> {
        let encoding = |e: postcard::Error| BundleError::Malformed(format!("encoding: {e}"));
        let head = postcard::to_stdvec(&Head {
            from,
            made_for,
            created_at,
            records,
        })
        .map_err(encoding)?;
        if head.len() > MAX_HEAD_BYTES {
            return Err(BundleError::Malformed(format!(
                "{} bytes of records, over the {MAX_HEAD_BYTES}-byte head",
                head.len()
            )));
        }
        let mut encoded = Vec::new();
        for (doc, chunks) in &docs {
            let d = DocChanges {
                doc: *doc.as_bytes(),
                chunks: chunks
                    .iter()
                    .map(|ch| ch.iter().map(Vec::as_slice).collect())
                    .collect(),
            };
            encoded.extend(postcard::to_stdvec(&d).map_err(encoding)?);
        }
        let docs = encoded;
        let mut out = Vec::with_capacity(HEADER + head.len() + docs.len());
        out.extend_from_slice(BUNDLE_MAGIC);
        out.extend_from_slice(&BUNDLE_VERSION.to_be_bytes());
        out.extend_from_slice(secret.public().as_bytes());
        out.extend_from_slice(&[0; 64]);
        out.extend_from_slice(&(head.len() as u32).to_be_bytes());
        out.extend_from_slice(&head);
        out.extend_from_slice(&docs);
        let sig = secret.sign(signed_message(&out[HEADER - 4..]).as_bytes());
        out[42..106].copy_from_slice(&sig.0);
        Ok(out)
    }

    pub fn from_unit(&self) -> UnitId {
        self.head.from
    }

    pub fn made_for(&self) -> UnitId {
        self.head.made_for
    }

    pub fn created_at(&self) -> u64 {
        self.head.created_at
    }
}

/// Changes a signature held vouches for (each actor up to its last signed
/// change), in causal order, cut into chunks at points where every actor's
/// last change is signed.
fn chunks(changes: Vec<SignedChange>) -> (Vec<Vec<Vec<u8>>>, usize) {
    let sendable = vouched_prefix(changes);
    let mut out = Vec::new();
    let mut cur: Vec<Vec<u8>> = Vec::new();
    let mut bytes = 0usize;
    let mut n = 0usize;
    let mut unsigned_tail: BTreeSet<ActorId> = BTreeSet::new();
    for c in causal_order(sendable) {
        if c.signature().is_some() {
            unsigned_tail.remove(&c.header().actor);
        } else {
            unsigned_tail.insert(c.header().actor);
        }
        let enc = c.encode();
        bytes += enc.len();
        cur.push(enc);
        n += 1;
        if unsigned_tail.is_empty() && (bytes >= CHUNK_BYTES || cur.len() >= CHUNK_CHANGES) {
            out.push(std::mem::take(&mut cur));
            bytes = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    (out, n)
}

impl Replica {
    /// What this node holds that `exporter` may see, for it to export only
    /// what this node lacks (nothing outside its audience is revealed).
    pub fn peer_state(&self, exporter: &UnitId) -> Result<PeerState, EngineError> {
        let mut state = PeerState {
            unit: self.local.as_ref().map(|l| l.unit),
            ..PeerState::default()
        };
        let mut audience = self.trust.audience(exporter);
        for v in self.membership.records() {
            if crate::sync_host::record_visible_to(v, &mut audience) {
                state.records.insert(*v.hash.as_bytes());
            }
        }
        for (doc, meta) in self.store.docs()? {
            if !self.trust.may_see(exporter, &doc) {
                continue;
            }
            state.docs.insert(
                *doc.as_bytes(),
                meta.clock
                    .iter()
                    .map(|(a, s)| (a.to_bytes().to_vec(), *s))
                    .collect(),
            );
        }
        Ok(state)
    }

    /// Writes a bundle of the records and changes `made_for` may see, less
    /// what `have` says it holds; signed by this node's key.
    pub fn export_bundle(
        &self,
        made_for: UnitId,
        have: Option<&PeerState>,
        now: u64,
    ) -> Result<(Vec<u8>, ExportSummary), BundleError> {
        let local = self.local.as_ref().ok_or(EngineError::NoSecret)?;
        let mut summary = ExportSummary {
            made_for: Some(made_for),
            ..ExportSummary::default()
        };
        let mut audience = self.trust.audience(&made_for);
        let records: Vec<Vec<u8>> = self
            .membership
            .records()
            .filter(|v| crate::sync_host::record_visible_to(v, &mut audience))
            .filter(|v| !have.is_some_and(|h| h.records.contains(v.hash.as_bytes())))
            .map(|v| v.record.encode())
            .collect();
        summary.records = records.len();
        let mut docs = Vec::new();
        for (doc, _) in self.store.docs().map_err(EngineError::from)? {
            if !self.trust.may_see(&made_for, &doc) {
                continue;
            }
            let vv = match have {
                Some(h) => h.version_vector(&doc)?,
                None => VersionVector::new(),
            };
            let changes = self.changes_to_send(&doc, &vv)?;
            if changes.is_empty() {
                continue;
            }
            let (chunks, n) = chunks(changes);
            if n == 0 {
                continue;
            }
            summary.documents += 1;
            summary.changes += n;
            docs.push((doc, chunks));
        }
        let out = Bundle::seal(&local.secret, local.unit, made_for, now, records, docs)?;
        if out.len() as u64 > MAX_BUNDLE_BYTES {
            return Err(BundleError::TooLarge { bytes: out.len() });
        }
        summary.bytes = out.len();
        Ok((out, summary))
    }

    /// Imports a bundle, all or nothing against tampering: the sender must
    /// be a member, the bundle made for this node's unit, every record must
    /// verify, and every change must pass the checks before the acceptance
    /// rule in a dry run on a checkpoint of the store at `scratch` (removed
    /// afterwards). Only then is it imported for real.
    pub fn import_bundle(
        &mut self,
        bundle: &Bundle<'_>,
        scratch: &Path,
        now: u64,
    ) -> Result<ImportSummary, BundleError> {
        self.check_bundle(bundle, now)?;
        if scratch.exists() {
            return Err(BundleError::Scratch(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("{} exists already", scratch.display()),
            )));
        }
        let dry = (|| {
            self.store.checkpoint(scratch).map_err(EngineError::from)?;
            let store = Store::open(scratch).map_err(EngineError::from)?;
            let mut copy = Replica::open(store, *self.membership.root(), self.local.clone())?;
            let r = copy.apply_bundle(bundle);
            drop(copy);
            r
        })();
        let removed = std::fs::remove_dir_all(scratch);
        dry?;
        removed.map_err(BundleError::Scratch)?;
        self.apply_bundle(bundle)
    }

    /// The checks that need no store: membership of the signer (with the
    /// bundle's own records), the unit it was made for, every record.
    fn check_bundle(&self, bundle: &Bundle<'_>, now: u64) -> Result<(), BundleError> {
        if let Some(local) = &self.local
            && bundle.head.made_for != local.unit
        {
            return Err(BundleError::WrongUnit {
                made_for: bundle.head.made_for,
                this: local.unit,
            });
        }
        let mut next: Membership = self.membership.clone();
        for (index, raw) in bundle.head.records.iter().enumerate() {
            let bad = |why: String| BundleError::BadRecord { index, why };
            let record = SignedRecord::decode(raw).map_err(|e| bad(e.to_string()))?;
            let v = verify_record(record).map_err(|e| bad(e.to_string()))?;
            next.insert(v);
        }
        let trust = next.evaluate();
        let info = trust
            .admit(&bundle.signer, now)
            .map_err(|e| BundleError::Foreign {
                signer: bundle.signer.to_string(),
                why: e.to_string(),
            })?;
        if info.unit != bundle.head.from {
            return Err(BundleError::WrongSender {
                claimed: bundle.head.from,
                actual: info.unit,
            });
        }
        Ok(())
    }

    fn apply_bundle(&mut self, bundle: &Bundle<'_>) -> Result<ImportSummary, BundleError> {
        let mut s = ImportSummary {
            from: Some(bundle.head.from),
            ..ImportSummary::default()
        };
        // Synced, unlike sync's: the import is answered to a user, and the
        // file may be gone after.
        let records = self.ingest_record_batch(bundle.head.records.clone())?;
        if records.invalid > 0 {
            return Err(BundleError::Malformed(format!(
                "{} records do not verify",
                records.invalid
            )));
        }
        s.records_new = records.accepted;
        s.records_unknown = records.unknown;
        let me = self.local.as_ref().map(|l| l.unit);
        for entry in bundle.docs() {
            let entry = entry?;
            let doc = DocId(Hash(entry.doc));
            if self.trust.genesis(&doc).is_none() {
                return Err(BundleError::BadChange {
                    doc: doc.to_string(),
                    index: 0,
                    why: InvalidChange::UnknownDocument {
                        hash: Hash::ZERO,
                        doc: doc.to_string(),
                    },
                });
            }
            if entry.chunks.iter().any(|ch| ch.len() > MAX_CHUNK) {
                return Err(BundleError::Malformed(format!(
                    "document {doc}: a chunk of more than {MAX_CHUNK} changes"
                )));
            }
            for (index, raw) in entry.chunks.iter().flatten().enumerate() {
                let c = SignedChange::decode(raw).map_err(|e| BundleError::BadChange {
                    doc: doc.to_string(),
                    index,
                    why: e.into(),
                })?;
                if c.doc() != &doc {
                    return Err(BundleError::Malformed(format!(
                        "change {index} filed under document {doc} belongs to {}",
                        c.doc()
                    )));
                }
            }
            if me.is_some_and(|u| !self.trust.may_see(&u, &doc)) {
                s.documents_skipped += 1;
                continue;
            }
            s.documents += 1;
            let mut offset = 0usize;
            for chunk in &entry.chunks {
                let report = self.ingest(chunk.iter().map(|c| c.to_vec()).collect())?;
                let mut dropped = 0usize;
                for (i, why) in report.invalid {
                    if matches!(why, InvalidChange::QuarantineFull { .. }) {
                        dropped += 1;
                        continue;
                    }
                    return Err(BundleError::BadChange {
                        doc: doc.to_string(),
                        index: offset + i,
                        why,
                    });
                }
                s.changes_accepted += report.accepted.len();
                s.changes_pending += report.pending.len();
                s.changes_rejected += report.rejected.len();
                s.changes_dropped += dropped;
                s.changes_already_held += chunk
                    .len()
                    .saturating_sub(report.accepted.len() + report.pending.len())
                    .saturating_sub(report.rejected.len() + dropped);
                offset += chunk.len();
            }
        }
        Ok(s)
    }
}
