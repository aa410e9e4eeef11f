//! A district at the scale DOMAIN.md reports for Gulou, generated from a
//! seed: the tree of units with their keys and certificates, grids with
//! their counts, every list (needs, resources, services, projects,
//! responsibilities, problems, micro-wishes, whistles), the acts units write
//! about each other's records (claims, responses, handling, signatures) and
//! co-building agreements, each as real signed automerge changes with an
//! edit history (records edited several times by their owners, some
//! concurrently from a second device).
//!
//! Owns: the figures of a profile and turning them into signed records and
//! changes. Must never: write anything a node could not have written (each
//! unit signs only its own documents, with its own key, through the same
//! model operations the API uses).
//!
//! Generation goes community by community and keeps only the documents
//! still being written in memory, so a ×10 district fits.

mod community;
mod names;
mod profile;
mod writer;

use std::collections::BTreeMap;

use gongjian_identity::{DocId, DocType, Secret, SignedChange, SignedRecord, UnitId, UnitKind};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

pub use names::STREETS;
pub use profile::Profile;

use writer::{Gen, cert, credit_code, share};

pub(crate) const DAY: i64 = 86_400;

/// A unit of the generated district, with its node key.
#[derive(Debug, Clone)]
pub struct Unit {
    pub id: UnitId,
    pub kind: UnitKind,
    pub name: String,
    pub parent: Option<UnitId>,
    pub secret: Secret,
}

/// One document: its id, owner, type and every signed change, in the order
/// they were made (causal).
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: DocId,
    pub unit: UnitId,
    pub doc_type: DocType,
    pub changes: Vec<SignedChange>,
}

/// A document built with automerge alone, its changes applied in one call.
pub fn automerge_doc(d: &Doc) -> automerge::Automerge {
    let parsed: Vec<automerge::Change> = d
        .changes
        .iter()
        .map(|c| automerge::Change::try_from(c.chunk()).expect("a generated chunk parses"))
        .collect();
    let mut am = automerge::Automerge::new();
    am.apply_changes(parsed).expect("generated changes apply");
    am
}

/// Builds each document with automerge alone ([`automerge_doc`]) and drops
/// it: the limit the benchmarks put ingest beside.
pub fn apply_with_automerge(docs: &[Doc]) {
    for d in docs {
        std::hint::black_box(automerge_doc(d).get_heads());
    }
}

/// The documents' changes in their wire encoding, in batches of at most
/// `max` changes that never split a document (so ingest builds each
/// document in one call); a document of more than `max` is a batch alone.
pub fn wire_batches<'a>(
    docs: impl IntoIterator<Item = &'a Doc> + 'a,
    max: usize,
) -> impl Iterator<Item = Vec<Vec<u8>>> + 'a {
    let mut docs = docs.into_iter().peekable();
    std::iter::from_fn(move || {
        let mut batch: Vec<Vec<u8>> = Vec::new();
        while let Some(d) = docs.peek() {
            if !batch.is_empty() && batch.len() + d.changes.len() > max {
                break;
            }
            batch.extend(d.changes.iter().map(SignedChange::encode));
            docs.next();
        }
        (!batch.is_empty()).then_some(batch)
    })
}

/// What was generated, counted.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    pub units: BTreeMap<String, usize>,
    pub grids: usize,
    pub items: BTreeMap<String, usize>,
    pub acts: BTreeMap<String, usize>,
    pub agreements: usize,
    pub documents: usize,
    pub records: usize,
    pub changes: usize,
    /// Bytes of the signed changes, as they travel (each with its own
    /// signature).
    pub change_bytes: usize,
    /// Edits made concurrently by a second device of the owner.
    pub concurrent_edits: usize,
}

/// A generated district.
#[derive(Debug, Clone)]
pub struct Dataset {
    pub seed: u64,
    /// The district's root key (it signs the certificates of the district
    /// and the streets).
    pub root: Secret,
    /// The district first, then in tree order.
    pub units: Vec<Unit>,
    /// Certificates (tree order), then every document's genesis.
    pub records: Vec<SignedRecord>,
    pub docs: Vec<Doc>,
    pub summary: Summary,
}

impl Dataset {
    pub fn unit(&self, id: &UnitId) -> Option<&Unit> {
        self.units.iter().find(|u| u.id == *id)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("generating {what}: {why}")]
pub struct GenError {
    what: String,
    why: String,
}

pub(crate) fn gen_err(what: impl Into<String>, why: impl std::fmt::Display) -> GenError {
    GenError {
        what: what.into(),
        why: why.to_string(),
    }
}

/// Generates a district from `profile` and `seed`, with times in the year
/// before `now`. The same inputs give the same bytes.
pub fn generate(profile: &Profile, seed: u64, now: u64) -> Result<Dataset, GenError> {
    let p = profile;
    let mut rng = StdRng::seed_from_u64(seed);
    let root = Secret::from_seed(rng.random());
    let mut g = Gen::new(rng, now);

    // The tree.
    let district = Unit {
        id: "320106000000"
            .parse()
            .map_err(|e| gen_err("the district", e))?,
        kind: UnitKind::District,
        name: "南京市鼓楼区".into(),
        parent: None,
        secret: Secret::from_seed(g.rng.random()),
    };
    let mut certs = vec![cert(&root, &district, now)];
    let mut streets = Vec::new();
    // (community, its residents), per street.
    let mut tree: Vec<Vec<(Unit, Vec<Unit>)>> = Vec::new();
    let (mut ci, mut ri) = (0usize, 0usize);
    for s in 0..p.streets {
        let street = Unit {
            id: format!("320106{:03}000", s + 1)
                .parse()
                .map_err(|e| gen_err("a street code", e))?,
            kind: UnitKind::Street,
            name: names::street(s),
            parent: Some(district.id),
            secret: Secret::from_seed(g.rng.random()),
        };
        certs.push(cert(&root, &street, now));
        let mut communities = Vec::new();
        for c in 0..share(p.communities, p.streets, s) {
            let community = Unit {
                id: format!("320106{:03}{:03}", s + 1, c + 1)
                    .parse()
                    .map_err(|e| gen_err("a community code", e))?,
                kind: UnitKind::Community,
                name: names::community(ci),
                parent: Some(street.id),
                secret: Secret::from_seed(g.rng.random()),
            };
            certs.push(cert(&street.secret, &community, now));
            let mut residents = Vec::new();
            for _ in 0..share(p.residents, p.communities, ci) {
                let (name, _) = names::resident(ri);
                let resident = Unit {
                    id: credit_code(&format!("91320106M{:08}", ri + 1))?,
                    kind: UnitKind::Resident,
                    name,
                    parent: Some(community.id),
                    secret: Secret::from_seed(g.rng.random()),
                };
                certs.push(cert(&community.secret, &resident, now));
                residents.push(resident);
                ri += 1;
            }
            communities.push((community, residents));
            ci += 1;
        }
        streets.push(street);
        tree.push(communities);
    }
    g.summary.units.insert("district".into(), 1);
    g.summary.units.insert("street".into(), streets.len());
    g.summary.units.insert("community".into(), ci);
    g.summary.units.insert("resident".into(), ri);
    g.records.extend(certs);

    let mut district_acts = g.open(&district, DocType::Acts, vec![]);
    let mut ci = 0usize;
    for (s, street) in streets.iter().enumerate() {
        let mut street_acts = g.open(street, DocType::Acts, vec![]);
        for (community, residents) in &tree[s] {
            g.community(
                p,
                ci,
                community,
                residents,
                street,
                &district,
                &mut street_acts,
                &mut district_acts,
            )?;
            ci += 1;
        }
        g.close(street_acts);
    }
    g.close(district_acts);

    let mut units = vec![district];
    for (s, street) in streets.into_iter().enumerate() {
        units.push(street);
        for (c, residents) in std::mem::take(&mut tree[s]) {
            units.push(c);
            units.extend(residents);
        }
    }
    let empty = std::mem::take(&mut g.empty);
    g.records.retain(|r| !empty.contains(&DocId(r.hash())));
    g.summary.documents = g.docs.len();
    g.summary.records = g.records.len();
    g.summary.changes = g.docs.iter().map(|d| d.changes.len()).sum();
    g.summary.change_bytes = g
        .docs
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| c.encode().len())
        .sum();
    Ok(Dataset {
        seed,
        root,
        units,
        records: g.records,
        docs: g.docs,
        summary: g.summary,
    })
}

/// Edits made later, while some node was away (the reconnect benchmark):
/// one change to each of `count` documents spread evenly over the
/// district, made by the owner's key on top of everything generated (a
/// note on the document, in Chinese, as an office would leave one).
pub fn later_edits(data: &Dataset, count: usize, now: u64) -> Result<Vec<Doc>, GenError> {
    use automerge::transaction::{CommitOptions, Transactable};
    let n = data.docs.len();
    let count = count.min(n);
    let mut out = Vec::with_capacity(count);
    for k in 0..count {
        let d = &data.docs[k * n / count];
        let what = || format!("a later edit of {:?} of {}", d.doc_type, d.unit);
        let owner = data
            .unit(&d.unit)
            .ok_or_else(|| gen_err(what(), "its owner is not in the district"))?;
        let mut am = automerge::Automerge::new();
        let changes = d
            .changes
            .iter()
            .map(|c| automerge::Change::try_from(c.chunk()))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| gen_err(what(), e))?;
        am.apply_changes(changes).map_err(|e| gen_err(what(), e))?;
        let actor = gongjian_identity::ActorId {
            key: owner.secret.public(),
            epoch: 1,
        };
        am.set_actor(automerge::ActorId::from(actor.to_bytes()));
        let mut tx = am.transaction();
        tx.put(
            automerge::ROOT,
            "备注",
            format!("{k}号回访：居民反映的问题已办结，满意度良好，材料已归档。"),
        )
        .map_err(|e| gen_err(what(), e))?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now as i64));
        let hash = hash.ok_or_else(|| gen_err(what(), "empty change"))?;
        let chunk = am
            .get_last_local_change()
            .filter(|c| c.hash() == hash)
            .map(|c| c.raw_bytes().to_vec())
            .ok_or_else(|| gen_err(what(), "the change just made is missing"))?;
        let signed =
            SignedChange::sign(d.id, chunk, &owner.secret).map_err(|e| gen_err(what(), e))?;
        out.push(Doc {
            id: d.id,
            unit: d.unit,
            doc_type: d.doc_type,
            changes: vec![signed],
        });
    }
    Ok(out)
}
