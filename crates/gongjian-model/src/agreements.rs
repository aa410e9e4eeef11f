//! Co-building agreements (共建协议 / 双向服务协议). The initiating street or
//! community keeps the terms in its agreement document (the other parties
//! are named in the genesis); every party signs by writing a `Sign` act in
//! its **own** acts document over the heads of the terms it read. The
//! status is derived, never typed in: signed when every party signed the
//! same heads, active within the term, expired after it, terminated by a
//! party; any change to the terms shows it unsigned again.

use std::collections::BTreeSet;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ReadDoc, ScalarValue, Value};
use gongjian_identity::{DocId, Hash, UnitId};
use serde::{Deserialize, Serialize};

use crate::acts::{Act, ActKind};

/// The terms the initiating unit writes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Terms {
    pub title: String,
    /// Unix seconds, inclusive.
    pub start: i64,
    pub end: i64,
    /// The services the initiating unit commits (one per line).
    pub services: Vec<String>,
    pub contact: String,
}

impl Terms {
    /// The checks [`AgreementDoc::set_terms`] makes, for callers that must
    /// refuse before creating the document.
    pub fn check(&self) -> Result<(), AgreementError> {
        // 2000-01-01 .. 2100-01-01: a term outside is a mistake, and a
        // time past the timestamp range would be stored clamped.
        const EARLIEST: i64 = 946_684_800;
        const LATEST: i64 = 4_102_444_800;
        for t in [self.start, self.end] {
            if !(EARLIEST..=LATEST).contains(&t) {
                return Err(AgreementError::Date(t));
            }
        }
        if self.end < self.start {
            return Err(AgreementError::Term {
                start: self.start,
                end: self.end,
            });
        }
        let n = self.title.chars().count();
        if n == 0 || n > 200 {
            return Err(AgreementError::Title);
        }
        let text: usize = self.services.iter().map(|s| s.len()).sum::<usize>() + self.contact.len();
        if text > 16 * 1024 {
            return Err(AgreementError::TooLong);
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgreementError {
    #[error("services and contact are over 16 KiB together")]
    TooLong,
    #[error("{0} is not a date between 2000 and 2100 (Unix seconds)")]
    Date(i64),
    #[error("the term ends ({end}) before it starts ({start})")]
    Term { start: i64, end: i64 },
    #[error("title must be 1 to 200 characters")]
    Title,
    #[error("the person's name is longer than 64 characters")]
    Person,
    #[error("automerge: {0}")]
    Automerge(String),
}

fn am(e: automerge::AutomergeError) -> AgreementError {
    AgreementError::Automerge(e.to_string())
}

/// Typed writes and reads of an agreement document.
#[derive(Debug)]
pub struct AgreementDoc<'a>(pub &'a mut Automerge);

impl AgreementDoc<'_> {
    /// Writes the terms in one local change.
    pub fn set_terms(&mut self, t: &Terms, now: i64) -> Result<Vec<u8>, AgreementError> {
        self.set_terms_by(t, "", now)
    }

    /// [`AgreementDoc::set_terms`], naming the person the node writes for
    /// (`by` on the first terms, `updated_by` on every write).
    pub fn set_terms_by(
        &mut self,
        t: &Terms,
        person: &str,
        now: i64,
    ) -> Result<Vec<u8>, AgreementError> {
        t.check()?;
        if person.chars().count() > crate::lists::MAX_PERSON {
            return Err(AgreementError::Person);
        }
        let mut tx = self.0.transaction();
        if !person.is_empty() {
            if tx.get(automerge::ROOT, "by").map_err(am)?.is_none() {
                tx.put(automerge::ROOT, "by", person).map_err(am)?;
            }
            tx.put(automerge::ROOT, "updated_by", person).map_err(am)?;
        }
        tx.put(automerge::ROOT, "title", t.title.as_str())
            .map_err(am)?;
        tx.put(automerge::ROOT, "start", crate::meta::stamp(t.start))
            .map_err(am)?;
        tx.put(automerge::ROOT, "end", crate::meta::stamp(t.end))
            .map_err(am)?;
        tx.put(automerge::ROOT, "services", t.services.join("\n"))
            .map_err(am)?;
        tx.put(automerge::ROOT, "contact", t.contact.as_str())
            .map_err(am)?;
        let stamp = crate::meta::stamp(now);
        if tx.get(automerge::ROOT, "created_at").map_err(am)?.is_none() {
            tx.put(automerge::ROOT, "created_at", stamp.clone())
                .map_err(am)?;
        }
        tx.put(automerge::ROOT, "updated_at", stamp).map_err(am)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        crate::meta::local_change_bytes(self.0, hash).map_err(AgreementError::Automerge)
    }

    /// When the terms were first written (Unix seconds; 0 before).
    pub fn created_at(&self) -> i64 {
        crate::meta::time(self.0, &automerge::ROOT, "created_at")
    }

    /// The persons recorded: who proposed the terms, who last changed them.
    pub fn persons(&self) -> (String, String) {
        crate::meta::persons(self.0, &automerge::ROOT)
    }

    pub fn terms(&self) -> Option<Terms> {
        let doc = &*self.0;
        let text = |k: &str| match doc.get(automerge::ROOT, k) {
            Ok(Some((Value::Scalar(s), _))) => s.as_str().map(str::to_owned),
            _ => None,
        };
        let time = |k: &str| match doc.get(automerge::ROOT, k) {
            Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                ScalarValue::Timestamp(ms) => Some(ms / 1000),
                _ => None,
            },
            _ => None,
        };
        Some(Terms {
            title: text("title")?,
            start: time("start")?,
            end: time("end")?,
            services: text("services")
                .unwrap_or_default()
                .lines()
                .filter(|l| !l.is_empty())
                .map(str::to_owned)
                .collect(),
            contact: text("contact").unwrap_or_default(),
        })
    }

    /// Created and updated times of the terms, and the author of their
    /// last change.
    pub fn meta(&self) -> crate::meta::RecordMeta {
        crate::meta::read_meta(self.0, &automerge::ROOT)
    }

    /// The heads a party signs.
    pub fn heads(&self) -> Vec<Hash> {
        let mut h: Vec<Hash> = self.0.get_heads().iter().map(|h| Hash(h.0)).collect();
        h.sort();
        h
    }
}

/// The derived status of an agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AgreementStatus {
    Draft,
    Signed,
    Active,
    Expired,
    Terminated,
}

impl AgreementStatus {
    pub fn label_zh(&self) -> &'static str {
        match self {
            AgreementStatus::Draft => "草拟",
            AgreementStatus::Signed => "已签订",
            AgreementStatus::Active => "履行中",
            AgreementStatus::Expired => "已到期",
            AgreementStatus::Terminated => "已终止",
        }
    }
}

/// The parties of an agreement: its owner and the genesis's other parties.
/// `None` unless there is at least one other party, none repeated, and the
/// owner not named again.
pub fn agreement_parties(owner: UnitId, others: &[UnitId]) -> Option<Vec<UnitId>> {
    let set: BTreeSet<UnitId> = others.iter().copied().collect();
    if others.is_empty() || set.len() != others.len() || set.contains(&owner) {
        return None;
    }
    let mut all = vec![owner];
    all.extend(set);
    Some(all)
}

/// Each party's own part (services, contact): its latest `Part` act.
pub fn agreement_parts<'a>(
    doc: &DocId,
    parties: &[UnitId],
    acts: &'a [(UnitId, Act)],
) -> Vec<(UnitId, &'a Act)> {
    parties
        .iter()
        .filter_map(|p| {
            acts.iter()
                .filter(|(u, a)| u == p && a.kind == ActKind::Part && a.target.doc == *doc)
                .max_by(|(_, a), (_, b)| {
                    (a.created_at, &a.id, &a.services, &a.contact).cmp(&(
                        b.created_at,
                        &b.id,
                        &b.services,
                        &b.contact,
                    ))
                })
                .map(|(u, a)| (*u, a))
        })
        .collect()
}

/// The digest a `Sign` act carries besides the terms' heads: every `Part`
/// act the parties wrote for agreement `doc` (unit, id, services, contact),
/// in (unit, id) order, each field length-prefixed. A party that changes or
/// adds a part after signing changes the digest, so the agreement shows
/// unsigned again until every party signs anew.
pub fn agreement_parts_digest(doc: &DocId, parties: &[UnitId], acts: &[(UnitId, Act)]) -> Hash {
    let party_set: BTreeSet<UnitId> = parties.iter().copied().collect();
    let mut parts: Vec<&(UnitId, Act)> = acts
        .iter()
        .filter(|(u, a)| party_set.contains(u) && a.kind == ActKind::Part && a.target.doc == *doc)
        .collect();
    // Every part counts, duplicates of an id (from a second acts document)
    // included, in an order of their content alone: the input order cannot
    // change the digest.
    let key = |(u, a): &&(UnitId, Act)| (*u, a.id.clone(), a.services.clone(), a.contact.clone());
    parts.sort_by_key(key);
    let mut bytes = b"gongjian/v1/agreement-parts".to_vec();
    bytes.extend_from_slice(doc.as_bytes());
    let mut field = |f: &[u8]| {
        bytes.extend_from_slice(&(f.len() as u64).to_be_bytes());
        bytes.extend_from_slice(f);
    };
    for (u, a) in parts {
        field(u.as_str().as_bytes());
        field(a.id.as_bytes());
        field(a.services.join("\n").as_bytes());
        field(a.contact.as_bytes());
    }
    Hash::of(&bytes)
}

/// The status and who has signed the current terms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgreementState {
    pub status: AgreementStatus,
    /// Parties whose latest signature covers the current heads.
    pub signed_by: Vec<UnitId>,
    /// Some party signed earlier terms or parts: they changed after signing.
    pub changed_after_signing: bool,
}

/// Derives the status of agreement `doc` (terms at `heads`, parties = its
/// owner and the genesis's parties) from the acts every party wrote in its
/// own documents. `now` decides only active versus expired.
pub fn agreement_status(
    doc: &DocId,
    parties: &[UnitId],
    terms: Option<&Terms>,
    heads: &[Hash],
    acts: &[(UnitId, Act)],
    now: i64,
) -> AgreementState {
    let party_set: BTreeSet<UnitId> = parties.iter().copied().collect();
    let ours = |(u, a): &&(UnitId, Act)| party_set.contains(u) && a.target.doc == *doc;
    if acts
        .iter()
        .filter(ours)
        .any(|(_, a)| a.kind == ActKind::Terminate)
    {
        return AgreementState {
            status: AgreementStatus::Terminated,
            signed_by: vec![],
            changed_after_signing: false,
        };
    }
    let mut current: Vec<Hash> = heads.to_vec();
    current.sort();
    let parts = agreement_parts_digest(doc, parties, acts);
    let mut signed_by = Vec::new();
    let mut changed_after_signing = false;
    for party in &party_set {
        // Any signature of the party over the current heads counts: heads
        // never repeat, so an old signature can never match new terms, and
        // no author-supplied time decides which signature is "latest".
        let signs: Vec<&Act> = acts
            .iter()
            .filter(ours)
            .filter(|(u, a)| u == party && a.kind == ActKind::Sign)
            .map(|(_, a)| a)
            .collect();
        let matches = signs.iter().any(|a| {
            let mut signed = a.heads.clone();
            signed.sort();
            !signed.is_empty() && signed == current && a.parts == Some(parts)
        });
        if matches {
            signed_by.push(*party);
        } else if !signs.is_empty() {
            changed_after_signing = true;
        }
    }
    // An agreement has at least two parties; an empty set is never signed.
    let all_signed = terms.is_some() && party_set.len() >= 2 && signed_by.len() == party_set.len();
    let status = match (all_signed, terms) {
        (true, Some(t)) if now < t.start => AgreementStatus::Signed,
        (true, Some(t)) if now <= t.end => AgreementStatus::Active,
        (true, Some(_)) => AgreementStatus::Expired,
        _ => AgreementStatus::Draft,
    };
    AgreementState {
        status,
        signed_by,
        changed_after_signing,
    }
}
