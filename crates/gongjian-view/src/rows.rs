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

/// Which change carried each op: per actor, (start op, max op, hash). Read
/// from the changes' metadata (automerge keeps it; no change is rebuilt),
/// a hash written out only for the changes asked about.
pub(crate) struct ChangeIndex {
    by_actor: HashMap<Vec<u8>, Vec<(u64, u64, automerge::ChangeHash)>>,
}

impl ChangeIndex {
    pub(crate) fn new(am: &Automerge) -> ChangeIndex {
        let mut by_actor: HashMap<Vec<u8>, Vec<(u64, u64, automerge::ChangeHash)>> = HashMap::new();
        for c in am.get_changes_meta(&[]) {
            by_actor
                .entry(c.actor.to_bytes().to_vec())
                .or_default()
                .push((c.start_op, c.max_op, c.hash));
        }
        for v in by_actor.values_mut() {
            v.sort();
        }
        ChangeIndex { by_actor }
    }

    fn change_of(&self, actor: &[u8], counter: u64) -> Option<String> {
        let v = self.by_actor.get(actor)?;
        let i = v.partition_point(|(start, _, _)| *start <= counter);
        let (start, max, hash) = v.get(i.checked_sub(1)?)?;
        (*start <= counter && counter <= *max).then(|| hash.to_string())
    }
}

/// The author key and change of the latest op on any field of `obj`.
pub(crate) fn latest(
    am: &Automerge,
    obj: &ObjId,
    changes: &ChangeIndex,
) -> (Option<String>, Option<String>) {
    let last = gongjian_model::Fields::read(am, obj)
        .last_op()
        .map(|(c, a)| (c, a.to_bytes().to_vec()));
    authored(last.as_ref(), changes)
}

/// The author key and change of an op, by its counter and actor.
pub(crate) fn authored(
    op: Option<&(u64, Vec<u8>)>,
    changes: &ChangeIndex,
) -> (Option<String>, Option<String>) {
    let Some((counter, actor)) = op else {
        return (None, None);
    };
    let author = actor
        .get(..32)
        .and_then(|k| <[u8; 32]>::try_from(k).ok())
        .and_then(|k| PublicKey::from_bytes(k).ok())
        .map(|k| k.to_string());
    let change = changes.change_of(actor, *counter);
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
    list.into_iter()
        .map(|it| {
            let (author, change) = authored(it.last_op.as_ref(), changes);
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

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use gongjian_identity::{ActorId, Hash, Secret};
    use gongjian_model::ItemFields;

    fn actor(seed: u8) -> (PublicKey, automerge::ActorId) {
        let key = Secret::from_seed([seed; 32]).public();
        let id = ActorId { key, epoch: 1 }.to_bytes();
        (key, automerge::ActorId::from(id.as_slice()))
    }

    /// A record read in one walk over its fields shows every value written
    /// concurrently, and names the author and the change of its newest
    /// field, as reading it field by field did.
    #[test]
    fn a_record_read_in_one_walk_shows_conflicts_and_its_latest_change() {
        let (key_a, actor_a) = actor(7);
        let (key_b, actor_b) = actor(8);
        let mut a = Automerge::new();
        a.set_actor(actor_a);
        let fields = ItemFields {
            title: Some("助餐点".into()),
            category: Some("助老".into()),
            ..Default::default()
        };
        ListDoc::new(&mut a, ListKind::Need)
            .add("meal", &fields, 1_780_000_000)
            .unwrap();
        let mut b = a.fork().with_actor(actor_b);
        let obj = record(&a, "meal").unwrap();
        a.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(&obj, "title", "社区助餐点")?;
            Ok(())
        })
        .unwrap();
        b.transact::<_, _, automerge::AutomergeError>(|tx| {
            tx.put(&obj, "title", "老人助餐点")?;
            tx.put(&obj, "area", "颐和路")?;
            Ok(())
        })
        .unwrap();
        let b_change = b.get_last_local_change().unwrap().hash();
        a.merge(&mut b).unwrap();

        let doc = DocId(Hash([9; 32]));
        let unit: UnitId = "320106002001".parse().unwrap();
        let index = ChangeIndex::new(&a);
        let rows = items(doc, unit, ListKind::Need, &mut a, &index);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        let mut titles = row.title_conflicts.clone();
        titles.push(row.title.clone());
        titles.sort();
        assert_eq!(titles, ["社区助餐点", "老人助餐点"]);
        assert_eq!(row.conflicts.get("title"), Some(&row.title_conflicts));
        assert_eq!(row.conflicts.len(), 1, "{:?}", row.conflicts);
        assert_eq!(
            (row.area.as_str(), row.category.as_str()),
            ("颐和路", "助老")
        );
        // The area is the newest op (b's second): b wrote it, in b's change.
        assert_eq!(row.provenance.author, Some(key_b.to_string()));
        assert_ne!(row.provenance.author, Some(key_a.to_string()));
        assert_eq!(row.provenance.change, Some(b_change.to_string()));
    }
}
