//! The merged regional view: every list item and act a node holds, as typed
//! rows with their provenance, kept up to date one document at a time as
//! verified changes arrive (a query never rescans documents).
//!
//! Owns: extracting rows from a document, the indexes that join acts
//! written in one unit's documents to the records of another, filters,
//! paging, counts and the digest of a scope.
//! Must never: read anything but accepted changes (it is fed from the
//! replica), or drop a conflicting concurrent value silently.

mod civic;
mod query;
mod report;
mod rows;

pub use civic::{AgreementQuery, AgreementRow, AgreementView, GridRow, MatchRow, PartyView};

pub use query::{ItemPage, ItemQuery, ItemView, MAX_LIMIT, QueryError, StatRow, StatsBy};
pub use report::{AgreementFigures, AreaFigures, LevelFigures, ListFigures, Report};
pub use rows::{ActRow, ItemRow, Provenance, global_id, split_global_id};

use std::collections::{BTreeMap, BTreeSet, HashMap};

use automerge::Automerge;
use gongjian_engine::Replica;
use gongjian_identity::{DocId, DocType, Hash, UnitId, UnitKind};
use gongjian_model::{ListKind, Trust, UnitInfo};

/// A unit as the view places it in the tree.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub name: String,
    pub parent: Option<UnitId>,
    pub street: Option<UnitId>,
    pub community: Option<UnitId>,
}

#[derive(Debug, Default)]
struct DocRows {
    items: Vec<String>,
    acts: Vec<String>,
    /// The genesis signer and whether it minted for another unit, as last
    /// set on the rows (records can change them without the document
    /// moving).
    origin: (Option<gongjian_identity::PublicKey>, bool),
}

/// The rows of one document as built at `heads`, ready to fold into a
/// view ([`View::fold`]).
#[derive(Debug)]
struct Folded {
    doc: DocId,
    heads: Vec<Hash>,
    rows: Rows,
}

#[derive(Debug)]
enum Rows {
    Items(Vec<ItemRow>),
    Grids(Vec<GridRow>),
    Agreement(Box<AgreementRow>),
    Acts(Vec<ActRow>),
    None,
}

impl Folded {
    /// The rows of `doc` (its accepted state `am`, at `heads`), or None if
    /// the view keeps none of its type or its genesis is not held.
    fn extract(trust: &Trust, doc: DocId, heads: Vec<Hash>, am: &mut Automerge) -> Option<Folded> {
        let g = trust.genesis(&doc)?;
        if !folds(g.doc_type) {
            return None;
        }
        let changes = rows::ChangeIndex::new(am);
        let rows = if let Some(kind) = ListKind::of_doc_type(g.doc_type) {
            Rows::Items(rows::items(doc, g.unit, kind, am, &changes))
        } else if g.doc_type == DocType::Grids {
            Rows::Grids(civic::grid_rows(doc, g.unit, am, &changes))
        } else if g.doc_type == DocType::Agreement {
            Rows::Agreement(Box::new(civic::agreement_row(
                doc, g.unit, &g.parties, am, &changes,
            )))
        } else if g.doc_type == DocType::Acts {
            Rows::Acts(rows::acts(doc, g.unit, am, &changes))
        } else {
            Rows::None
        };
        Some(Folded { doc, heads, rows })
    }
}

/// Rows taken from each document as ingest builds it ([`Replica::on_built`],
/// while the document is at hand), waiting to be folded into a view once
/// the ingest is stored: the view need not build the document again from
/// the store. Rows are a function of the document's accepted changes,
/// which its heads name, so rows whose heads are no longer the stored ones
/// (a call that failed to commit, a later one) are dropped, never folded.
#[derive(Debug, Clone, Default)]
pub struct PendingRows(std::sync::Arc<std::sync::Mutex<HashMap<DocId, Folded>>>);

impl PendingRows {
    /// The hook to install with [`Replica::on_built`].
    pub fn hook(&self) -> gongjian_engine::Built {
        let pending = self.0.clone();
        Box::new(move |trust, doc, heads, am| {
            // Extracted before the lock: ingest calls this from two
            // threads at once.
            let rows = Folded::extract(trust, *doc, heads.to_vec(), am);
            let mut pending = pending.lock().expect("pending rows lock");
            match rows {
                Some(f) => pending.insert(*doc, f),
                None => pending.remove(doc),
            };
        })
    }

    /// How many documents' rows wait.
    pub fn len(&self) -> usize {
        self.0.lock().expect("pending rows lock").len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Folds into `view` every waiting document whose stored heads are its
    /// rows' (dropping the others), and returns those folded.
    pub fn fold_into(&self, view: &mut View, replica: &Replica) -> BTreeSet<DocId> {
        let pending = std::mem::take(&mut *self.0.lock().expect("pending rows lock"));
        let mut folded = BTreeSet::new();
        for (doc, f) in pending {
            let stored = replica
                .store()
                .doc_meta(&doc)
                .ok()
                .flatten()
                .map(|m| m.heads);
            if stored.as_ref() == Some(&f.heads) {
                view.fold(f, replica.trust());
                folded.insert(doc);
            }
        }
        folded
    }
}

/// The rows of `doc` as the replica holds it (built from the store unless
/// cached); None if the view keeps none, or it could not be read (logged).
fn extract_stored(replica: &Replica, doc: &DocId) -> Option<Folded> {
    let g = replica.trust().genesis(doc)?;
    if !folds(g.doc_type) {
        return None;
    }
    let heads = match replica.store().doc_meta(doc) {
        Ok(m) => m.map(|m| m.heads).unwrap_or_default(),
        Err(e) => {
            tracing::warn!(%doc, error = %e, "view: document meta not read");
            return None;
        }
    };
    match replica.load(doc) {
        Ok(mut am) => Folded::extract(replica.trust(), *doc, heads, &mut am),
        Err(e) => {
            tracing::warn!(%doc, error = %e, "view: document not loaded");
            None
        }
    }
}

/// Whether the view keeps rows of documents of this type.
fn folds(t: DocType) -> bool {
    ListKind::of_doc_type(t).is_some()
        || matches!(t, DocType::Acts | DocType::Grids | DocType::Agreement)
}

/// The merged view of one node.
#[derive(Debug, Default)]
pub struct View {
    places: BTreeMap<UnitId, Place>,
    docs: HashMap<DocId, DocRows>,
    items: BTreeMap<String, ItemRow>,
    acts: BTreeMap<String, ActRow>,
    /// Target global id → acts pointing at it.
    acts_on: HashMap<String, BTreeSet<String>>,
    grids: BTreeMap<DocId, Vec<GridRow>>,
    agreements: BTreeMap<DocId, AgreementRow>,
    /// Heads of each document as last folded in.
    heads: HashMap<DocId, Vec<Hash>>,
    /// Documents folded in since start (for metrics and lag).
    pub updates: u64,
}

impl View {
    /// Builds the view from every document the replica holds. Documents
    /// are built from the store and their rows extracted on every core
    /// (each document alone); the rows are folded in on this thread.
    pub fn build(replica: &Replica) -> View {
        let mut v = View::default();
        v.set_units(replica.trust());
        let docs: Vec<DocId> = replica
            .trust()
            .documents()
            .filter(|(_, g)| folds(g.doc_type))
            .map(|(d, _)| *d)
            .collect();
        let workers = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4);
        let next = std::sync::atomic::AtomicUsize::new(0);
        let (tx, rx) = std::sync::mpsc::sync_channel::<Folded>(256);
        std::thread::scope(|s| {
            for _ in 0..workers {
                let (tx, next, docs) = (tx.clone(), &next, &docs);
                s.spawn(move || {
                    loop {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let Some(doc) = docs.get(i) else { break };
                        if let Some(f) = extract_stored(replica, doc)
                            && tx.send(f).is_err()
                        {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            for f in rx {
                v.fold(f, replica.trust());
            }
        });
        v
    }

    /// Places every certified unit in the tree (after records changed).
    pub fn set_units(&mut self, trust: &Trust) {
        let infos: BTreeMap<UnitId, UnitInfo> = trust.units().map(|u| (u.unit, u)).collect();
        let mut places = BTreeMap::new();
        for (id, info) in &infos {
            let mut street = None;
            let mut community = None;
            let mut at = Some(*id);
            for _ in 0..8 {
                let Some(u) = at.and_then(|u| infos.get(&u)) else {
                    break;
                };
                match u.kind {
                    UnitKind::Street if street.is_none() => street = Some(u.unit),
                    UnitKind::Community if community.is_none() => community = Some(u.unit),
                    _ => {}
                }
                at = u.parent;
            }
            places.insert(
                *id,
                Place {
                    unit: *id,
                    kind: info.kind,
                    name: info.name.clone(),
                    parent: info.parent,
                    street,
                    community,
                },
            );
        }
        self.places = places;
    }

    pub fn place(&self, unit: &UnitId) -> Option<&Place> {
        self.places.get(unit)
    }

    pub fn places(&self) -> impl Iterator<Item = &Place> {
        self.places.values()
    }

    /// Whether `unit` is `scope` or below it in the tree.
    pub fn in_scope(&self, unit: &UnitId, scope: &UnitId) -> bool {
        let mut at = Some(*unit);
        for _ in 0..8 {
            match at {
                Some(u) if u == *scope => return true,
                Some(u) => at = self.places.get(&u).and_then(|p| p.parent),
                None => return false,
            }
        }
        false
    }

    /// The heads the view folded in, by document: a copy, for [`behind`]
    /// to compare with the store without holding the view.
    pub fn folded_heads(&self) -> HashMap<DocId, Vec<Hash>> {
        self.heads.clone()
    }

    /// Documents whose accepted heads the view has not folded in yet (0
    /// when it keeps up): the view's lag, for metrics.
    pub fn behind(&self, replica: &Replica) -> usize {
        behind(&self.heads, replica.store(), replica.trust())
    }
}

/// Documents of the view's kinds whose accepted heads in `store` are not
/// those `folded` (a view's [`View::folded_heads`]) holds. It decodes every
/// such document's metadata: for metrics, off the sync thread.
pub fn behind(
    folded: &HashMap<DocId, Vec<Hash>>,
    store: &gongjian_store::Store,
    trust: &Trust,
) -> usize {
    let Ok(docs) = store.docs_where(|d| trust.genesis(d).is_some_and(|g| folds(g.doc_type))) else {
        return 0;
    };
    docs.iter()
        .filter(|(d, m)| folded.get(d) != Some(&m.heads))
        .count()
}

impl View {
    /// Folds one document in again from what the replica holds.
    pub fn refresh(&mut self, replica: &Replica, doc: &DocId) {
        if replica.trust().genesis(doc).is_none() {
            self.remove_doc(doc);
            return;
        }
        if let Some(f) = extract_stored(replica, doc) {
            self.fold(f, replica.trust());
        }
    }

    /// Puts rows extracted from a document in place of its old ones, with
    /// their provenance as `trust` has it now (records may have arrived
    /// since the rows were extracted without the document moving).
    fn fold(&mut self, f: Folded, trust: &Trust) {
        let Folded { doc, heads, rows } = f;
        let origin = (
            trust.genesis_signer(&doc).copied(),
            trust.minted_by_other(&doc),
        );
        self.remove_doc(&doc);
        let mut ids = DocRows::default();
        match rows {
            Rows::Items(items) => {
                for item in items {
                    ids.items.push(item.id.clone());
                    self.items.insert(item.id.clone(), item);
                }
            }
            Rows::Grids(grids) => {
                self.grids.insert(doc, grids);
            }
            Rows::Agreement(a) => {
                self.agreements.insert(doc, *a);
            }
            Rows::Acts(acts) => {
                for act in acts {
                    ids.acts.push(act.id.clone());
                    self.acts_on
                        .entry(act.target.clone())
                        .or_default()
                        .insert(act.id.clone());
                    self.acts.insert(act.id.clone(), act);
                }
            }
            Rows::None => {}
        }
        ids.origin = origin;
        self.docs.insert(doc, ids);
        self.updates += 1;
        self.set_origin(&doc, origin.0.map(|k| k.to_string()), origin.1);
        self.heads.insert(doc, heads);
    }

    /// After records changed (a revocation may move what is accepted):
    /// refolds the documents whose heads moved, and places units again.
    /// Reads document metadata only; loads just the documents that moved.
    pub fn records_changed(&mut self, replica: &Replica) {
        self.set_units(replica.trust());
        let moved: Vec<DocId> = match replica.store().docs() {
            Ok(docs) => docs
                .into_iter()
                .filter(|(d, m)| self.heads.get(d).is_none_or(|h| *h != m.heads))
                .map(|(d, _)| d)
                .collect(),
            Err(e) => {
                tracing::warn!(error = %e, "view: documents not listed");
                return;
            }
        };
        for doc in moved {
            self.refresh(replica, &doc);
        }
        // Provenance can change with the records alone (a unit's earlier
        // certificate arriving after a second key's makes the enrolment
        // key another): set again where it did, without loading anything.
        let trust = replica.trust();
        let changed: Vec<(DocId, (Option<gongjian_identity::PublicKey>, bool))> = self
            .docs
            .iter()
            .filter_map(|(d, rows)| {
                let now = (trust.genesis_signer(d).copied(), trust.minted_by_other(d));
                (now != rows.origin).then_some((*d, now))
            })
            .collect();
        for (d, origin) in changed {
            if let Some(rows) = self.docs.get_mut(&d) {
                rows.origin = origin;
            }
            self.set_origin(&d, origin.0.map(|k| k.to_string()), origin.1);
        }
    }

    /// Records on every row of `doc` who signed its genesis, and whether
    /// that was a key other than the unit's enrolment key.
    fn set_origin(&mut self, doc: &DocId, signer: Option<String>, minted: bool) {
        let set = |p: &mut Provenance| {
            p.minted_by_other = minted;
            p.genesis_signer = signer.clone();
        };
        if let Some(rows) = self.docs.get(doc) {
            for id in &rows.items {
                if let Some(r) = self.items.get_mut(id) {
                    set(&mut r.provenance);
                }
            }
            for id in &rows.acts {
                if let Some(r) = self.acts.get_mut(id) {
                    set(&mut r.provenance);
                }
            }
        }
        for r in self.grids.get_mut(doc).into_iter().flatten() {
            set(&mut r.provenance);
        }
        if let Some(r) = self.agreements.get_mut(doc) {
            set(&mut r.provenance);
        }
    }

    fn remove_doc(&mut self, doc: &DocId) {
        self.heads.remove(doc);
        self.grids.remove(doc);
        self.agreements.remove(doc);
        if let Some(old) = self.docs.remove(doc) {
            for id in old.items {
                self.items.remove(&id);
            }
            for id in old.acts {
                if let Some(a) = self.acts.remove(&id)
                    && let Some(set) = self.acts_on.get_mut(&a.target)
                {
                    set.remove(&id);
                    if set.is_empty() {
                        self.acts_on.remove(&a.target);
                    }
                }
            }
        }
    }

    pub fn item(&self, id: &str) -> Option<&ItemRow> {
        self.items.get(id)
    }

    /// The acts other units wrote about record `id`, oldest first.
    pub fn acts_on(&self, id: &str) -> Vec<&ActRow> {
        let mut out: Vec<&ActRow> = self
            .acts_on
            .get(id)
            .into_iter()
            .flatten()
            .filter_map(|a| self.acts.get(a))
            .collect();
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    pub fn len(&self) -> (usize, usize) {
        (self.items.len(), self.acts.len())
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty() && self.acts.is_empty()
    }

    /// A digest of every row owned by `scope` or units below it: two nodes
    /// holding the same heads of those documents get the same digest.
    pub fn digest(&self, scope: &UnitId) -> Hash {
        let mut parts: Vec<Vec<u8>> = Vec::new();
        parts.push(b"gongjian-view-digest-v1".to_vec());
        for row in self.items.values() {
            if self.in_scope(&row.unit, scope) {
                parts.push(serde_json::to_vec(row).unwrap_or_default());
            }
        }
        for row in self.acts.values() {
            if self.in_scope(&row.unit, scope) {
                parts.push(serde_json::to_vec(row).unwrap_or_default());
                parts.push(serde_json::to_vec(&row.act).unwrap_or_default());
            }
        }
        for row in self.grids.values().flatten() {
            if self.in_scope(&row.unit, scope) {
                parts.push(serde_json::to_vec(row).unwrap_or_default());
            }
        }
        for row in self.agreements.values() {
            if self.in_scope(&row.owner, scope) {
                parts.push(serde_json::to_vec(row).unwrap_or_default());
            }
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        Hash::of_parts(&refs)
    }
}

/// A sort key that orders Chinese text by pinyin (then the text itself),
/// as people expect a list of names to be ordered: 鼓楼 before 玄武.
pub fn pinyin_key(s: &str) -> (String, String) {
    use pinyin::ToPinyin;
    let mut key = String::with_capacity(s.len() * 3);
    for (c, p) in s.chars().zip(s.to_pinyin()) {
        match p {
            Some(p) => key.push_str(p.plain()),
            None => key.extend(c.to_lowercase()),
        }
        key.push(' ');
    }
    (key, s.to_owned())
}

#[cfg(test)]
mod pinyin_tests {
    #[test]
    fn chinese_names_sort_by_pinyin() {
        let mut names = vec!["玄武区", "鼓楼区", "宁海路街道", "Alpha", "建邺区"];
        names.sort_by_key(|n| super::pinyin_key(n));
        assert_eq!(names, ["Alpha", "鼓楼区", "建邺区", "宁海路街道", "玄武区"]);
    }
}
