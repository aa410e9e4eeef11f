//! Rows read from one document's accepted state, with provenance.

use std::collections::HashMap;

use automerge::{Automerge, ObjId, ReadDoc};
use gongjian_identity::{DocId, PublicKey, UnitId};
use gongjian_model::{ActsDoc, ListDoc, ListKind};
use serde::Serialize;

/// A record's global id: its document and its id within it. The same id
/// names the record on every node.
pub fn global_id(doc: &DocId, record: &str) -> String {
    format!("{doc}.{record}")
}

/// Splits a global id into document and record id.
pub fn split_global_id(id: &str) -> Option<(DocId, &str)> {
    let (doc, record) = id.split_once('.')?;
    let valid = (1..=64).contains(&record.len())
        && record
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !valid {
        return None;
    }
    Some((doc.parse().ok()?, record))
}

/// Where a row comes from: the document, the unit owning it, the key that
/// wrote the row's latest field and the change that carried it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provenance {
    pub doc: String,
    pub unit: UnitId,
    pub author: Option<String>,
    pub change: Option<String>,
    /// The document was minted in the unit's name by a key that is not
    /// one of the unit's own (a parent may, PROTOCOL.md §6): flagged, so
    /// nobody takes it for the unit's own word.
    pub minted_by_other: bool,
    /// The key that signed the document's genesis.
    pub genesis_signer: Option<String>,
}

impl Provenance {
    /// From a document's rows; the genesis signer and the flag are set by
    /// the view, which holds the trust (`View::refresh`).
    pub(crate) fn new(
        doc: &DocId,
        unit: UnitId,
        author: Option<String>,
        change: Option<String>,
    ) -> Provenance {
        Provenance {
            doc: doc.to_string(),
            unit,
            author,
            change,
            minted_by_other: false,
            genesis_signer: None,
        }
    }
}

/// A list item (need, resource, service, project, responsibility,
/// problem, wish, whistle).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemRow {
    pub id: String,
    pub record: String,
    pub list: &'static str,
    pub list_zh: &'static str,
    pub title: String,
    /// Other titles written concurrently (a conflict is shown, not dropped).
    pub title_conflicts: Vec<String>,
    /// Every field written concurrently: the other values, by field.
    pub conflicts: std::collections::BTreeMap<String, Vec<String>>,
    pub category: String,
    pub description: String,
    pub area: String,
    pub grid: String,
    pub urgent: bool,
    pub status: &'static str,
    pub status_zh: &'static str,
    pub level: Option<&'static str>,
    /// The unit the latest escalation step names as handler.
    pub escalated_to: Option<UnitId>,
    /// Every unit an escalation step named as handler, oldest first.
    #[serde(skip)]
    pub handlers: Vec<UnitId>,
    /// The kind of unit the latest escalation's level calls for.
    #[serde(skip)]
    pub handler_kind: Option<gongjian_identity::UnitKind>,
    /// The status the owner itself wrote; `status` is what the merged view
    /// shows, which for an escalated problem is its handler's latest
    /// handling act.
    #[serde(skip)]
    pub owner_status: &'static str,
    /// Whistles only: the levels called to respond (empty: all).
    pub levels: Vec<&'static str>,
    /// Whistles only: the responder the order was dispatched to.
    pub dispatched_to: Option<UnitId>,
    pub created_at: i64,
    pub updated_at: i64,
    /// The person the owning node wrote the record for (empty: not
    /// recorded), and the person of its latest update.
    pub by: String,
    pub updated_by: String,
    pub unit: UnitId,
    pub provenance: Provenance,
}

/// An act (claim, response, handling …) a unit wrote in its own document
/// about another unit's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ActRow {
    pub id: String,
    pub kind: &'static str,
    pub kind_zh: &'static str,
    /// Global id of the record acted on.
    pub target: String,
    pub target_unit: UnitId,
    pub note: String,
    pub resolved: bool,
    pub created_at: i64,
    /// The person the acting node wrote the act for (empty: not recorded).
    pub by: String,
    pub unit: UnitId,
    pub provenance: Provenance,
    /// The act as written (signed heads, parts, services), for the joins
    /// that derive an agreement's status.
    #[serde(skip)]
    pub act: gongjian_model::Act,
}

/// Which change carried each op: per actor, (start op, max op, hash).
pub(crate) struct ChangeIndex {
    by_actor: HashMap<Vec<u8>, Vec<(u64, u64, String)>>,
}

impl ChangeIndex {
    pub(crate) fn new(am: &Automerge) -> ChangeIndex {
        let mut by_actor: HashMap<Vec<u8>, Vec<(u64, u64, String)>> = HashMap::new();
        for c in am.get_changes(&[]) {
            by_actor
                .entry(c.actor_id().to_bytes().to_vec())
                .or_default()
                .push((c.start_op().get(), c.max_op(), c.hash().to_string()));
        }
        for v in by_actor.values_mut() {
            v.sort();
        }
        ChangeIndex { by_actor }
    }

    fn change_of(&self, actor: &[u8], counter: u64) -> Option<&str> {
        let v = self.by_actor.get(actor)?;
        let i = v.partition_point(|(start, _, _)| *start <= counter);
        let (start, max, hash) = v.get(i.checked_sub(1)?)?;
        (*start <= counter && counter <= *max).then_some(hash.as_str())
    }
}

/// The author key and change of the latest op on any field of `obj`.
pub(crate) fn latest(
    am: &Automerge,
    obj: &ObjId,
    changes: &ChangeIndex,
) -> (Option<String>, Option<String>) {
    let mut last: Option<(u64, Vec<u8>)> = None;
    for key in am.keys(obj) {
        if let Ok(Some((_, ObjId::Id(counter, actor, _)))) = am.get(obj, key.as_str())
            && last.as_ref().is_none_or(|(c, _)| counter > *c)
        {
            last = Some((counter, actor.to_bytes().to_vec()));
        }
    }
    let Some((counter, actor)) = last else {
        return (None, None);
    };
    let author = actor
        .get(..32)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| PublicKey::from_bytes(k).ok())
        .map(|k| k.to_string());
    let change = changes.change_of(&actor, counter).map(str::to_owned);
    (author, change)
}

pub(crate) fn record(am: &Automerge, id: &str) -> Option<ObjId> {
    match am.get(automerge::ROOT, id) {
        Ok(Some((automerge::Value::Object(automerge::ObjType::Map), obj))) => Some(obj),
        _ => None,
    }
}

pub(crate) fn items(
    doc: DocId,
    unit: UnitId,
    kind: ListKind,
    am: &mut Automerge,
    changes: &ChangeIndex,
) -> Vec<ItemRow> {
    let list = ListDoc::new(am, kind).list();
    let am = &*am;
    list.into_iter()
        .map(|it| {
            let (author, change) = record(am, &it.id)
                .map(|o| latest(am, &o, changes))
                .unwrap_or((None, None));
            ItemRow {
                id: global_id(&doc, &it.id),
                record: it.id.clone(),
                list: kind.as_str(),
                list_zh: kind.label_zh(),
                title: it.title,
                title_conflicts: it.title_conflicts,
                conflicts: it.conflicts,
                category: it.category,
                description: it.description,
                area: it.area,
                grid: it.grid,
                urgent: it.urgent,
                status: it.status.as_str(),
                status_zh: it.status.label_zh(),
                level: it.level.map(|l| l.as_str()),
                escalated_to: it.escalations.last().and_then(|e| e.handler),
                handlers: it.escalations.iter().filter_map(|e| e.handler).collect(),
                handler_kind: it.escalations.last().and_then(|e| e.to.handler_kind()),
                owner_status: it.status.as_str(),
                levels: it.levels.iter().map(|k| k.as_str()).collect(),
                dispatched_to: it.dispatched_to,
                created_at: it.created_at,
                updated_at: it.updated_at,
                by: it.by,
                updated_by: it.updated_by,
                unit,
                provenance: Provenance::new(&doc, unit, author, change),
            }
        })
        .collect()
}

pub(crate) fn acts(
    doc: DocId,
    unit: UnitId,
    am: &mut Automerge,
    changes: &ChangeIndex,
) -> Vec<ActRow> {
    let list = ActsDoc { doc: am, unit }.list();
    let am = &*am;
    list.into_iter()
        .map(|a| {
            let (author, change) = record(am, &a.id)
                .map(|o| latest(am, &o, changes))
                .unwrap_or((None, None));
            ActRow {
                act: a.clone(),
                id: global_id(&doc, &a.id),
                kind: a.kind.as_str(),
                kind_zh: a.kind.label_zh(),
                target: global_id(&a.target.doc, &a.target.record),
                target_unit: a.target.unit,
                note: a.note,
                resolved: a.resolved,
                created_at: a.created_at,
                by: a.by,
                unit,
                provenance: Provenance::new(&doc, unit, author, change),
            }
        })
        .collect()
}
