//! Bodies of the signed records (`PROTOCOL.md`, "Record bodies"), postcard-encoded.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::change::ActorId;
use crate::error::DecodeError;
use crate::hash::{DocId, Hash};
use crate::key::{PublicKey, Secret};
use crate::record::{RecordKind, SignedRecord};
use crate::unit::{UnitId, UnitKind};

/// A body type of a signed record.
pub trait RecordBody: Serialize + DeserializeOwned {
    const KIND: RecordKind;
    const NAME: &'static str;

    fn sign(&self, secret: &Secret) -> SignedRecord {
        let body = postcard::to_stdvec(self).unwrap_or_else(|_| unreachable!("in-memory encoding"));
        SignedRecord::sign(Self::KIND, body, secret)
    }
}

impl SignedRecord {
    /// Decodes the body as `T`, refusing another kind, trailing bytes and
    /// non-canonical encodings (the body must re-encode to the same bytes).
    pub fn open<T: RecordBody>(&self) -> Result<T, DecodeError> {
        let err = |reason: String| DecodeError::Body {
            kind: T::NAME,
            reason,
        };
        if self.kind() != T::KIND {
            return Err(err(format!("record is a {:?}", self.kind())));
        }
        let (value, rest) =
            postcard::take_from_bytes::<T>(self.body()).map_err(|e| err(e.to_string()))?;
        if !rest.is_empty() {
            return Err(DecodeError::Trailing { extra: rest.len() });
        }
        let again = postcard::to_stdvec(&value).map_err(|e| err(e.to_string()))?;
        if again != self.body() {
            return Err(err("non-canonical encoding".into()));
        }
        Ok(value)
    }
}

/// Binds `subject` to a unit, signed by the parent (the root key for units
/// whose parent is the district, and for the district itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Certificate {
    pub subject: PublicKey,
    pub unit: UnitId,
    pub kind: UnitKind,
    pub parent: Option<UnitId>,
    pub name: String,
    /// Unix seconds; checked at admission and local writes only.
    pub not_before: u64,
    pub not_after: u64,
}

impl RecordBody for Certificate {
    const KIND: RecordKind = RecordKind::Certificate;
    const NAME: &'static str = "certificate";
}

/// A document or record id as a revocation names it:
/// `SHA-256("gongjian-cut-v1" ‖ id)`. Revocations go to every member; a
/// blinded id names nothing a member outside the document's audience could
/// read (PROTOCOL.md §5.2), while a node holding the id finds its entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Blinded(pub Hash);

impl Blinded {
    pub fn of(id: &Hash) -> Blinded {
        Blinded(Hash::of_parts(&[b"gongjian-cut-v1", id.as_bytes()]))
    }
}

/// One actor's accepted prefix in one document: the change `head` (at
/// `seq`) and its same-actor ancestors, by hash. A thief holding the key
/// cannot sign another change at a kept seq: it is not on this chain.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CutEntry {
    /// The document, blinded.
    pub doc: Blinded,
    pub actor: ActorId,
    pub seq: u64,
    pub head: Hash,
}

impl CutEntry {
    pub fn new(doc: &DocId, actor: ActorId, seq: u64, head: Hash) -> CutEntry {
        CutEntry {
            doc: Blinded::of(&doc.0),
            actor,
            seq,
            head,
        }
    }
}

/// What a revocation still accepts from the revoked keys.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationCut {
    /// Sorted by (blinded document, actor), one entry per pair.
    pub changes: Vec<CutEntry>,
    /// Sorted blinded ids of records signed by the revoked keys that stay
    /// valid.
    pub records: Vec<Blinded>,
}

impl RevocationCut {
    /// The kept prefix of `actor` in `doc`, if any.
    pub fn entry(&self, doc: &DocId, actor: &ActorId) -> Option<&CutEntry> {
        let doc = Blinded::of(&doc.0);
        self.changes
            .binary_search_by(|e| (&e.doc, &e.actor).cmp(&(&doc, actor)))
            .ok()
            .map(|i| &self.changes[i])
    }

    pub fn admits_record(&self, hash: &Hash) -> bool {
        self.records.binary_search(&Blinded::of(hash)).is_ok()
    }

    /// Keeps the record `hash` (call [`RevocationCut::normalize`] after).
    pub fn keep_record(&mut self, hash: &Hash) {
        self.records.push(Blinded::of(hash));
    }

    /// Sorts and deduplicates both lists (the encoding requires it).
    pub fn normalize(&mut self) {
        self.changes.sort();
        self.changes
            .dedup_by(|a, b| a.doc == b.doc && a.actor == b.actor);
        self.records.sort();
        self.records.dedup();
    }

    pub fn is_normalized(&self) -> bool {
        self.changes
            .windows(2)
            .all(|w| (&w[0].doc, &w[0].actor) < (&w[1].doc, &w[1].actor))
            && self.records.windows(2).all(|w| w[0] < w[1])
    }
}

/// Whose keys a revocation names.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum RevocationTarget {
    /// One key.
    Key(PublicKey),
    /// Every key listed, all certified for `unit` (the unit leaves).
    Unit { unit: UnitId, keys: Vec<PublicKey> },
}

impl RevocationTarget {
    pub fn keys(&self) -> &[PublicKey] {
        match self {
            RevocationTarget::Key(k) => std::slice::from_ref(k),
            RevocationTarget::Unit { keys, .. } => keys,
        }
    }
}

/// Revokes keys, keeping what the cut names; everything else they signed is
/// rejected everywhere, in any order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Revocation {
    pub target: RevocationTarget,
    pub cut: RevocationCut,
    pub reason: String,
    pub issued_at: u64,
}

impl RecordBody for Revocation {
    const KIND: RecordKind = RecordKind::Revocation;
    const NAME: &'static str = "revocation";
}

/// Adds a write key to a unit's documents; signed by a current write key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyAdd {
    pub unit: UnitId,
    pub key: PublicKey,
    pub issued_at: u64,
}

impl RecordBody for KeyAdd {
    const KIND: RecordKind = RecordKind::KeyAdd;
    const NAME: &'static str = "key-add";
}

/// The parent gives a unit new write keys (the unit lost its own). Every view
/// shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub unit: UnitId,
    pub keys: Vec<PublicKey>,
    pub reason: String,
    pub issued_at: u64,
}

impl RecordBody for Recovery {
    const KIND: RecordKind = RecordKind::Recovery;
    const NAME: &'static str = "recovery";
}

/// The type of a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum DocType {
    /// A unit's list of needs (需求清单).
    Needs,
    /// Resources it can offer (资源清单).
    Resources,
    /// Two-way service entries (服务清单).
    Services,
    /// Projects to claim (项目清单).
    Projects,
    /// Responsibilities (责任清单).
    Responsibilities,
    /// Problems found in its grids (问题清单).
    Problems,
    /// Micro-wishes (微心愿).
    Wishes,
    /// The unit's grids (网格).
    Grids,
    /// The unit's acts on other units' records: claims, responses, handling.
    Acts,
    /// Whistles a community blew (吹哨).
    Whistles,
    /// A co-building agreement's terms (共建协议); the parties are in the genesis.
    Agreement,
}

impl DocType {
    pub fn as_str(&self) -> &'static str {
        match self {
            DocType::Needs => "needs",
            DocType::Resources => "resources",
            DocType::Services => "services",
            DocType::Projects => "projects",
            DocType::Responsibilities => "responsibilities",
            DocType::Problems => "problems",
            DocType::Wishes => "wishes",
            DocType::Grids => "grids",
            DocType::Acts => "acts",
            DocType::Whistles => "whistles",
            DocType::Agreement => "agreement",
        }
    }
}

/// Creates a document; its id is the hash of the signed genesis record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Genesis {
    pub doc_type: DocType,
    pub unit: UnitId,
    /// Other party units (agreements); empty otherwise.
    pub parties: Vec<UnitId>,
    pub created_at: u64,
    /// The unit's write keys at creation; the signer must be one of them.
    pub write_keys: Vec<PublicKey>,
}

impl RecordBody for Genesis {
    const KIND: RecordKind = RecordKind::Genesis;
    const NAME: &'static str = "genesis";
}

/// "These are my heads": a unit's signed statement of what it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeadsAnnouncement {
    pub unit: UnitId,
    /// Sorted by document id; heads sorted.
    pub docs: Vec<(DocId, Vec<Hash>)>,
    pub at: u64,
}

impl RecordBody for HeadsAnnouncement {
    const KIND: RecordKind = RecordKind::Heads;
    const NAME: &'static str = "heads";
}
