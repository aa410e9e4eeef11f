//! A small federation for the engine's tests: root, district, a street, a
//! community, each with real keys and certificates, replicas on real RocksDB.

#![allow(dead_code)]

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ReadDoc};
use gongjian_engine::{LocalIdentity, Replica};
use gongjian_identity::{
    ActorId, Certificate, DocId, DocType, Genesis, Hash, PublicKey, RecordBody, Secret,
    SignedChange, SignedRecord, UnitId, UnitKind,
};
use gongjian_store::Store;

pub const NOW: u64 = 1_780_000_000;

#[derive(Debug)]
pub struct Fed {
    pub root: Secret,
    pub district: Secret,
    pub street: Secret,
    pub community: Secret,
    pub district_id: UnitId,
    pub street_id: UnitId,
    pub community_id: UnitId,
    pub records: Vec<SignedRecord>,
}

pub fn cert(
    signer: &Secret,
    subject: &Secret,
    unit: UnitId,
    kind: UnitKind,
    parent: Option<UnitId>,
    name: &str,
) -> SignedRecord {
    Certificate {
        subject: subject.public(),
        unit,
        kind,
        parent,
        name: name.into(),
        not_before: NOW - 1000,
        not_after: NOW + 86_400 * 365,
    }
    .sign(signer)
}

/// A resident unit (a hospital) certified by the community.
#[derive(Debug)]
pub struct Resident {
    pub secret: Secret,
    pub id: UnitId,
    pub cert: SignedRecord,
}

pub fn hospital(fed: &Fed, seed: u8) -> Resident {
    let secret = Secret::from_seed([seed; 32]);
    let id: UnitId = "91350100M000100Y43".parse().unwrap();
    let cert = cert(
        &fed.community,
        &secret,
        id,
        UnitKind::Resident,
        Some(fed.community_id),
        "江苏省人民医院",
    );
    Resident { secret, id, cert }
}

pub fn fed() -> Fed {
    let root = Secret::from_seed([1; 32]);
    let district = Secret::from_seed([2; 32]);
    let street = Secret::from_seed([3; 32]);
    let community = Secret::from_seed([4; 32]);
    let district_id: UnitId = "320106000000".parse().unwrap();
    let street_id: UnitId = "320106002000".parse().unwrap();
    let community_id: UnitId = "320106002001".parse().unwrap();
    let records = vec![
        cert(
            &root,
            &district,
            district_id,
            UnitKind::District,
            None,
            "南京市鼓楼区",
        ),
        cert(
            &root,
            &street,
            street_id,
            UnitKind::Street,
            Some(district_id),
            "宁海路街道",
        ),
        cert(
            &street,
            &community,
            community_id,
            UnitKind::Community,
            Some(street_id),
            "颐和路社区",
        ),
    ];
    Fed {
        root,
        district,
        street,
        community,
        district_id,
        street_id,
        community_id,
        records,
    }
}

pub fn replica(dir: &std::path::Path, fed: &Fed, local: Option<(&Secret, UnitId)>) -> Replica {
    let store = Store::create(dir).unwrap();
    store.bump_epoch(1).unwrap();
    let mut r = Replica::open(
        store,
        fed.root.public(),
        local.map(|(s, u)| LocalIdentity {
            secret: s.clone(),
            unit: u,
        }),
    )
    .unwrap();
    r.insert_records(fed.records.clone()).unwrap();
    r
}

pub fn reopen(dir: &std::path::Path, fed: &Fed) -> Replica {
    Replica::open(Store::open(dir).unwrap(), fed.root.public(), None).unwrap()
}

/// Reopens a replica's store with its local identity (a restart).
pub fn reopen_with(dir: &std::path::Path, fed: &Fed, secret: &Secret, unit: UnitId) -> Replica {
    Replica::open(
        Store::open(dir).unwrap(),
        fed.root.public(),
        Some(LocalIdentity {
            secret: secret.clone(),
            unit,
        }),
    )
    .unwrap()
}

pub fn genesis(unit: UnitId, signer: &Secret, extra_writers: &[PublicKey]) -> SignedRecord {
    let mut write_keys = vec![signer.public()];
    write_keys.extend_from_slice(extra_writers);
    Genesis {
        doc_type: DocType::Needs,
        unit,
        parties: vec![],
        created_at: NOW,
        write_keys,
    }
    .sign(signer)
}

/// A needs document of `unit` written by `signer` alone, created at
/// `created_at`: another document for each time.
pub fn genesis_at(unit: UnitId, signer: &Secret, created_at: u64) -> SignedRecord {
    Genesis {
        doc_type: DocType::Needs,
        unit,
        parties: vec![],
        created_at,
        write_keys: vec![signer.public()],
    }
    .sign(signer)
}

/// An author writing raw automerge changes outside any replica.
#[derive(Debug)]
pub struct Author {
    pub secret: Secret,
    pub doc: Automerge,
    pub id: DocId,
}

impl Author {
    pub fn new(secret: &Secret, epoch: u32, id: DocId) -> Author {
        let actor = ActorId {
            key: secret.public(),
            epoch,
        };
        Author {
            secret: secret.clone(),
            doc: Automerge::new().with_actor(automerge::ActorId::from(actor.to_bytes())),
            id,
        }
    }

    pub fn put(&mut self, key: &str, value: &str) -> SignedChange {
        let mut tx = self.doc.transaction();
        tx.put(automerge::ROOT, key, value).unwrap();
        tx.commit_with(CommitOptions::default().with_time(NOW as i64));
        let chunk = self
            .doc
            .get_last_local_change()
            .unwrap()
            .raw_bytes()
            .to_vec();
        SignedChange::sign(self.id, chunk, &self.secret).unwrap()
    }

    /// Learns another author's changes (as a peer would after sync).
    pub fn merge(&mut self, changes: &[SignedChange]) {
        let cs: Vec<automerge::Change> = changes
            .iter()
            .map(|c| automerge::Change::try_from(c.chunk()).unwrap())
            .collect();
        self.doc.apply_changes(cs).unwrap();
    }
}

pub fn wire(changes: &[SignedChange]) -> Vec<Vec<u8>> {
    changes.iter().map(SignedChange::encode).collect()
}

/// The hashes of a document's accepted changes, sorted.
pub fn accepted(r: &Replica, doc: &DocId) -> Vec<Hash> {
    let mut out: Vec<Hash> = r
        .store()
        .doc_changes(doc)
        .unwrap()
        .iter()
        .map(|c| c.hash())
        .collect();
    out.sort();
    out
}

pub fn heads(r: &Replica, doc: &DocId) -> Vec<Hash> {
    r.store()
        .doc_meta(doc)
        .unwrap()
        .map(|m| m.heads)
        .unwrap_or_default()
}

pub fn value(r: &Replica, doc: &DocId, key: &str) -> Option<String> {
    let am = r.load(doc).unwrap();
    match am.get(automerge::ROOT, key).unwrap() {
        Some((automerge::Value::Scalar(s), _)) => s.as_str().map(str::to_owned),
        _ => None,
    }
}

/// A replica holding the federation and a needs document of the community.
pub fn community_doc() -> (tempfile::TempDir, Fed, Replica, DocId) {
    let dir = tempfile::tempdir().unwrap();
    let fed = fed();
    let mut r = replica(dir.path(), &fed, None);
    let g = genesis(fed.community_id, &fed.community, &[]);
    let doc = DocId(g.hash());
    r.insert_records(vec![g]).unwrap();
    (dir, fed, r, doc)
}

/// A node of `unit` holding `secret`, with the federation and `extra` records.
pub fn node(
    dir: &std::path::Path,
    f: &Fed,
    extra: &[SignedRecord],
    secret: &Secret,
    unit: UnitId,
) -> Replica {
    let store = Store::create(dir).unwrap();
    store.bump_epoch(NOW).unwrap();
    let mut r = Replica::open(
        store,
        f.root.public(),
        Some(LocalIdentity {
            secret: secret.clone(),
            unit,
        }),
    )
    .unwrap();
    let mut records = f.records.clone();
    records.extend_from_slice(extra);
    r.insert_records(records).unwrap();
    r
}
