//! Cross-unit actions (认领 · 应哨 · 处置): a unit acts on another unit's
//! record by writing an act in its **own** acts document, pointing at the
//! record; nobody writes anyone else's document. Views join acts to their
//! targets (`acts_on`).

use std::fmt;
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ObjType, ReadDoc};
use gongjian_identity::{DocId, Hash, UnitId};
use serde::{Deserialize, Serialize};

/// What a unit does to another unit's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActKind {
    /// Claims a project or a micro-wish (认领).
    Claim,
    /// Responds to a whistle (应哨).
    Response,
    /// Handles an escalated problem at its level (处置).
    Handling,
    /// Takes the order a whistle's owner dispatched to it (接单).
    Take,
    /// Signs an agreement's terms as they stand at `heads` (签约).
    Sign,
    /// Terminates an agreement the unit is a party to (终止).
    Terminate,
    /// A party's own part of an agreement: the services it commits and its
    /// contact (承诺).
    Part,
}

impl ActKind {
    pub fn as_str(&self) -> &'static str {
        match self {
            ActKind::Claim => "claim",
            ActKind::Response => "response",
            ActKind::Handling => "handling",
            ActKind::Take => "take",
            ActKind::Sign => "sign",
            ActKind::Terminate => "terminate",
            ActKind::Part => "part",
        }
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            ActKind::Claim => "认领",
            ActKind::Response => "应哨",
            ActKind::Handling => "处置",
            ActKind::Take => "接单",
            ActKind::Sign => "签约",
            ActKind::Terminate => "终止",
            ActKind::Part => "承诺",
        }
    }
}

impl fmt::Display for ActKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ActKind {
    type Err = ActError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "claim" => ActKind::Claim,
            "response" => ActKind::Response,
            "handling" => ActKind::Handling,
            "take" => ActKind::Take,
            "sign" => ActKind::Sign,
            "terminate" => ActKind::Terminate,
            "part" => ActKind::Part,
            other => return Err(ActError::Kind(other.to_owned())),
        })
    }
}

/// The record an act points at.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Target {
    pub unit: UnitId,
    pub doc: DocId,
    pub record: String,
}

/// One act as written by the acting unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Act {
    pub id: String,
    pub kind: ActKind,
    pub target: Target,
    pub note: String,
    /// Handling only: the acting unit reports the problem resolved.
    pub resolved: bool,
    /// Sign only: the heads of the agreement document that were signed.
    pub heads: Vec<Hash>,
    /// Sign only: the digest of every party's parts as the signer read them
    /// (`agreement_parts_digest`), so a part changed after signing shows
    /// the agreement unsigned again.
    pub parts: Option<Hash>,
    /// Part only: the services the party commits, and its contact.
    pub services: Vec<String>,
    pub contact: String,
    pub created_at: i64,
    /// The person (a user of the acting node) the act was written for;
    /// empty when not recorded. The node's key signs; this names the person.
    pub by: String,
}

impl Act {
    /// An act with no note, heads, parts, services or contact; set the
    /// fields the kind needs with struct update syntax.
    pub fn new(id: &str, kind: ActKind, target: Target, created_at: i64) -> Act {
        Act {
            id: id.to_owned(),
            kind,
            target,
            note: String::new(),
            resolved: false,
            heads: vec![],
            parts: None,
            services: vec![],
            contact: String::new(),
            created_at,
            by: String::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActError {
    #[error("unknown act `{0}` (claim, response, handling, take, sign, terminate, part)")]
    Kind(String),
    #[error("act id `{0}` must be 1 to 64 letters, digits, `-` or `_`")]
    Id(String),
    #[error("a sign act must name the heads and the parts it signs")]
    EmptyHeads,
    #[error("a unit does not act on its own records")]
    SelfTarget,
    #[error("only a handling can report a problem resolved")]
    ResolvedNotHandling,
    #[error("note is longer than {0} characters")]
    Note(usize),
    #[error("the person's name is longer than {0} characters")]
    By(usize),
    #[error("an act with id `{0}` exists already")]
    Exists(String),
    #[error("automerge: {0}")]
    Automerge(String),
}

fn am(e: automerge::AutomergeError) -> ActError {
    ActError::Automerge(e.to_string())
}

/// Typed writes and reads of a unit's acts document.
#[derive(Debug)]
pub struct ActsDoc<'a> {
    pub doc: &'a mut Automerge,
    /// The unit the document belongs to (the acting unit).
    pub unit: UnitId,
}

impl ActsDoc<'_> {
    /// Records an act in one local change; returns the change's raw bytes.
    pub fn record(&mut self, act: &Act, now: i64) -> Result<Vec<u8>, ActError> {
        if !crate::lists::valid_id(&act.id) {
            return Err(ActError::Id(act.id.clone()));
        }
        if act.kind == ActKind::Sign && (act.heads.is_empty() || act.parts.is_none()) {
            return Err(ActError::EmptyHeads);
        }
        // A unit signs or terminates its own agreements too; every other
        // act is on another unit's record.
        let own_allowed = matches!(act.kind, ActKind::Sign | ActKind::Terminate | ActKind::Part);
        if act.target.unit == self.unit && !own_allowed {
            return Err(ActError::SelfTarget);
        }
        if act.resolved && act.kind != ActKind::Handling {
            return Err(ActError::ResolvedNotHandling);
        }
        if act.note.chars().count() > 4000 {
            return Err(ActError::Note(4000));
        }
        if act.by.chars().count() > crate::lists::MAX_PERSON {
            return Err(ActError::By(crate::lists::MAX_PERSON));
        }
        if matches!(self.doc.get(automerge::ROOT, act.id.as_str()), Ok(Some(_))) {
            return Err(ActError::Exists(act.id.clone()));
        }
        let mut tx = self.doc.transaction();
        let obj = tx
            .put_object(automerge::ROOT, act.id.as_str(), ObjType::Map)
            .map_err(am)?;
        tx.put(&obj, "kind", act.kind.as_str()).map_err(am)?;
        tx.put(&obj, "target_unit", act.target.unit.to_string())
            .map_err(am)?;
        tx.put(&obj, "target_doc", act.target.doc.to_string())
            .map_err(am)?;
        tx.put(&obj, "target_record", act.target.record.as_str())
            .map_err(am)?;
        tx.put(&obj, "note", act.note.as_str()).map_err(am)?;
        tx.put(&obj, "resolved", act.resolved).map_err(am)?;
        let heads: Vec<String> = act.heads.iter().map(Hash::to_string).collect();
        tx.put(&obj, "heads", heads.join(",")).map_err(am)?;
        let parts = act.parts.map(|h| h.to_string()).unwrap_or_default();
        tx.put(&obj, "parts", parts).map_err(am)?;
        tx.put(&obj, "services", act.services.join("\n"))
            .map_err(am)?;
        tx.put(&obj, "contact", act.contact.as_str()).map_err(am)?;
        if !act.by.is_empty() {
            tx.put(&obj, "by", act.by.as_str()).map_err(am)?;
        }
        tx.put(&obj, "updated_at", crate::meta::stamp(now))
            .map_err(am)?;
        tx.put(&obj, "created_at", crate::meta::stamp(act.created_at))
            .map_err(am)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        crate::meta::local_change_bytes(self.doc, hash).map_err(ActError::Automerge)
    }

    /// Created and updated times and last author of act `id`.
    pub fn meta(&self, id: &str) -> Option<crate::meta::RecordMeta> {
        let obj = crate::meta::record_obj(self.doc, id)?;
        Some(crate::meta::read_meta(self.doc, &obj))
    }

    /// Every act of the document, by creation time then id.
    pub fn list(&self) -> Vec<Act> {
        let doc = &*self.doc;
        let mut out = Vec::new();
        // One walk over the acts, and one over each act's fields (a lookup
        // in the op set per field cost the view about twice as much).
        for entry in doc.map_range(automerge::ROOT, ..) {
            if !matches!(entry.value, automerge::ValueRef::Object(ObjType::Map)) {
                continue;
            }
            let obj = entry.id();
            let id = entry.key.into_owned();
            let fields = crate::meta::Fields::read(doc, &obj);
            let text = |k: &str| fields.text(k);
            let (Ok(kind), Ok(unit), Ok(tdoc)) = (
                text("kind").parse::<ActKind>(),
                text("target_unit").parse::<UnitId>(),
                text("target_doc").parse::<DocId>(),
            ) else {
                continue;
            };
            let resolved = fields.is_true("resolved");
            let created_at = fields.time("created_at");
            out.push(Act {
                kind,
                target: Target {
                    unit,
                    doc: tdoc,
                    record: text("target_record"),
                },
                note: text("note"),
                resolved,
                heads: text("heads")
                    .split(',')
                    .filter_map(|h| h.parse().ok())
                    .collect(),
                parts: text("parts").parse().ok(),
                services: text("services")
                    .lines()
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect(),
                contact: text("contact"),
                by: crate::meta::person(&text("by")),
                created_at,
                id,
            });
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }
}

/// The acts of every unit held that point at `target`, with the acting unit.
pub fn acts_on<'a>(target: &Target, acts: &'a [(UnitId, Act)]) -> Vec<&'a (UnitId, Act)> {
    acts.iter().filter(|(_, a)| a.target == *target).collect()
}

/// The handling acts that count for problem `target`: written by the
/// handler named in the problem's highest escalation step (its owner wrote
/// that step), of the kind that level calls for (`kind_of` gives a unit's
/// certified kind), and above the owner in the certified tree
/// (`is_below(owner, handler)`). Anyone else's "handling" is ignored.
pub fn problem_handlings<'a>(
    problem: &crate::lists::Item,
    target: &Target,
    acts: &'a [(UnitId, Act)],
    kind_of: impl Fn(&UnitId) -> Option<gongjian_identity::UnitKind>,
    is_below: impl Fn(&UnitId, &UnitId) -> bool,
) -> Vec<&'a (UnitId, Act)> {
    let Some(top) = problem.escalations.last() else {
        return vec![];
    };
    let Some(handler) = top.handler else {
        return vec![];
    };
    let kind_ok = match top.to.handler_kind() {
        Some(k) => kind_of(&handler) == Some(k),
        None => false,
    };
    if problem.kind != crate::lists::ListKind::Problem
        || !kind_ok
        || !is_below(&target.unit, &handler)
    {
        return vec![];
    }
    acts_on(target, acts)
        .into_iter()
        .filter(|(u, a)| *u == handler && a.kind == ActKind::Handling)
        .collect()
}

/// The units that answered whistle `target` and are of a level it called
/// (`kind_of` gives a unit's certified kind): the only units its owner may
/// dispatch the order to. Sorted, each once.
pub fn whistle_responders(
    whistle: &crate::lists::Item,
    target: &Target,
    acts: &[(UnitId, Act)],
    kind_of: impl Fn(&UnitId) -> Option<gongjian_identity::UnitKind>,
) -> Vec<UnitId> {
    let mut out: Vec<UnitId> = acts_on(target, acts)
        .into_iter()
        .filter(|(u, a)| {
            a.kind == ActKind::Response
                && *u != target.unit
                && kind_of(u).is_some_and(|k| whistle.calls(k))
        })
        .map(|(u, _)| *u)
        .collect();
    out.sort();
    out.dedup();
    out
}
