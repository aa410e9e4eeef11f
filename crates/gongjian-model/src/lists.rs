//! A unit's lists (清单) as automerge documents, one document per list kind:
//! needs, resources, services, projects, responsibilities, problems and
//! micro-wishes share one record shape and one status vocabulary. The root
//! map holds one map per record, keyed by the record's global id.

use std::fmt;
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, Value};
use gongjian_identity::{DocType, PublicKey};
use serde::{Deserialize, Serialize};

/// The kind of a list; each has its own document type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ListKind {
    Need,
    Resource,
    Service,
    Project,
    Responsibility,
    Problem,
    Wish,
    /// A whistle blown by a community (吹哨).
    Whistle,
}

impl ListKind {
    pub const ALL: [ListKind; 8] = [
        ListKind::Need,
        ListKind::Resource,
        ListKind::Service,
        ListKind::Project,
        ListKind::Responsibility,
        ListKind::Problem,
        ListKind::Wish,
        ListKind::Whistle,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            ListKind::Need => "need",
            ListKind::Resource => "resource",
            ListKind::Service => "service",
            ListKind::Project => "project",
            ListKind::Responsibility => "responsibility",
            ListKind::Problem => "problem",
            ListKind::Wish => "wish",
            ListKind::Whistle => "whistle",
        }
    }

    /// The list's name as the offices write it.
    pub fn label_zh(&self) -> &'static str {
        match self {
            ListKind::Need => "需求清单",
            ListKind::Resource => "资源清单",
            ListKind::Service => "服务清单",
            ListKind::Project => "项目清单",
            ListKind::Responsibility => "责任清单",
            ListKind::Problem => "问题清单",
            ListKind::Wish => "微心愿",
            ListKind::Whistle => "吹哨",
        }
    }

    pub fn doc_type(&self) -> DocType {
        match self {
            ListKind::Need => DocType::Needs,
            ListKind::Resource => DocType::Resources,
            ListKind::Service => DocType::Services,
            ListKind::Project => DocType::Projects,
            ListKind::Responsibility => DocType::Responsibilities,
            ListKind::Problem => DocType::Problems,
            ListKind::Wish => DocType::Wishes,
            ListKind::Whistle => DocType::Whistles,
        }
    }

    pub fn of_doc_type(t: DocType) -> Option<ListKind> {
        ListKind::ALL.into_iter().find(|k| k.doc_type() == t)
    }
}

impl fmt::Display for ListKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ListKind {
    type Err = ItemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ListKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| ItemError::Kind(s.to_owned()))
    }
}

/// The one status vocabulary of every list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemStatus {
    Open,
    InProgress,
    Resolved,
    Closed,
}

impl ItemStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            ItemStatus::Open => "open",
            ItemStatus::InProgress => "in_progress",
            ItemStatus::Resolved => "resolved",
            ItemStatus::Closed => "closed",
        }
    }

    /// The words the offices use.
    pub fn label_zh(&self) -> &'static str {
        match self {
            ItemStatus::Open => "待认领",
            ItemStatus::InProgress => "办理中",
            ItemStatus::Resolved => "已解决",
            ItemStatus::Closed => "已关闭",
        }
    }
}

impl fmt::Display for ItemStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemStatus {
    type Err = ItemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => ItemStatus::Open,
            "in_progress" => ItemStatus::InProgress,
            "resolved" => ItemStatus::Resolved,
            "closed" => ItemStatus::Closed,
            other => return Err(ItemError::Status(other.to_owned())),
        })
    }
}

/// Where a problem is handled: 小事不出网格、难事不出片区、大事不出街道.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemLevel {
    Grid,
    Zone,
    Community,
    Street,
    District,
}

impl ProblemLevel {
    pub fn as_str(&self) -> &'static str {
        match self {
            ProblemLevel::Grid => "grid",
            ProblemLevel::Zone => "zone",
            ProblemLevel::Community => "community",
            ProblemLevel::Street => "street",
            ProblemLevel::District => "district",
        }
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            ProblemLevel::Grid => "网格",
            ProblemLevel::Zone => "片区",
            ProblemLevel::Community => "社区",
            ProblemLevel::Street => "街道",
            ProblemLevel::District => "区",
        }
    }
}

impl ProblemLevel {
    /// The kind of unit that handles a problem at this level; grid and zone
    /// steps stay with the owner's own people.
    pub fn handler_kind(&self) -> Option<gongjian_identity::UnitKind> {
        use gongjian_identity::UnitKind;
        match self {
            ProblemLevel::Grid | ProblemLevel::Zone => None,
            ProblemLevel::Community => Some(UnitKind::Community),
            ProblemLevel::Street => Some(UnitKind::Street),
            ProblemLevel::District => Some(UnitKind::District),
        }
    }
}

impl FromStr for ProblemLevel {
    type Err = ItemError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "grid" => ProblemLevel::Grid,
            "zone" => ProblemLevel::Zone,
            "community" => ProblemLevel::Community,
            "street" => ProblemLevel::Street,
            "district" => ProblemLevel::District,
            other => return Err(ItemError::Level(other.to_owned())),
        })
    }
}

/// One step of a problem's escalation, written by the problem's owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Escalation {
    pub to: ProblemLevel,
    /// The unit that handles it at that level (none while in the owner's own grids).
    pub handler: Option<gongjian_identity::UnitId>,
    pub at: i64,
}

/// The editable fields of a record; `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemFields {
    pub title: Option<String>,
    pub category: Option<String>,
    pub description: Option<String>,
    /// Where: matches resources to needs (same category, same area).
    pub area: Option<String>,
    /// The grid the record belongs to, by the grid's id.
    pub grid: Option<String>,
    /// Projects only: announced for emergency claiming (急办项目).
    pub urgent: Option<bool>,
    /// Whistles only: the levels called to respond (district, street,
    /// community, co-building units); empty means all four.
    pub levels: Option<Vec<gongjian_identity::UnitKind>>,
}

/// One record as read from a list document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Item {
    pub id: String,
    pub kind: ListKind,
    pub title: String,
    pub category: String,
    pub description: String,
    pub area: String,
    pub grid: String,
    pub urgent: bool,
    pub status: ItemStatus,
    /// Unix seconds.
    pub created_at: i64,
    pub updated_at: i64,
    /// The key that made the latest change to the record.
    pub last_author: Option<PublicKey>,
    /// Concurrent values of the title that automerge kept besides `title`.
    pub title_conflicts: Vec<String>,
    /// Every field written concurrently (title, category, description,
    /// area, grid, urgent, status, dispatched_to, levels): the values
    /// automerge kept besides the one shown, by field. Shown, never dropped.
    pub conflicts: std::collections::BTreeMap<String, Vec<String>>,
    /// Problems only: the level reached, and how it got there.
    pub level: Option<ProblemLevel>,
    pub escalations: Vec<Escalation>,
    /// Whistles only: the responder the community dispatched the order to (派单).
    pub dispatched_to: Option<gongjian_identity::UnitId>,
    /// Whistles only: the levels called to respond; empty means all four.
    pub levels: Vec<gongjian_identity::UnitKind>,
    /// The person who wrote the record, as the writing node recorded it
    /// (empty: not recorded, e.g. written with the API token).
    pub by: String,
    /// The person who made the latest update.
    pub updated_by: String,
    /// The newest op among the record's fields: its counter and actor
    /// (the view finds the change that carried it).
    #[serde(skip)]
    pub last_op: Option<(u64, Vec<u8>)>,
}

impl Item {
    /// Whether a unit of `kind` is called to respond to this whistle.
    pub fn calls(&self, kind: gongjian_identity::UnitKind) -> bool {
        self.kind == ListKind::Whistle && (self.levels.is_empty() || self.levels.contains(&kind))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("title must be 1 to {max} characters, got {len}")]
    Title { len: usize, max: usize },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("unknown status `{0}` (open, in_progress, resolved, closed)")]
    Status(String),
    #[error(
        "unknown list `{0}` (need, resource, service, project, responsibility, problem, wish, whistle)"
    )]
    Kind(String),
    #[error("record id `{0}` must be 1 to 64 letters, digits, `-` or `_`")]
    Id(String),
    #[error("unknown level `{0}` (grid, zone, community, street, district)")]
    Level(String),
    #[error("only whistles call levels to respond")]
    LevelsNotWhistle,
    #[error("only whistles are dispatched")]
    NotWhistle,
    #[error("{0} has not responded to this whistle at a level it called")]
    NotResponder(gongjian_identity::UnitId),
    #[error("a {0:?} document is not a list")]
    NotAList(DocType),
    #[error("only problems escalate")]
    NotProblem,
    #[error("{handler} is not a unit of the {level} level")]
    HandlerLevel {
        handler: gongjian_identity::UnitId,
        level: &'static str,
    },
    #[error("a problem at {from} can only move up, not to {to}")]
    NotUp {
        from: &'static str,
        to: &'static str,
    },
    #[error("only projects can be urgent")]
    UrgentNotProject,
    #[error("no record with id `{0}`")]
    NotFound(String),
    #[error("a record with id `{0}` exists already")]
    Exists(String),
    #[error("automerge: {0}")]
    Automerge(String),
}

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 4000;

/// Stamps an update: when, and who (when a person is set).
fn touch(
    tx: &mut automerge::transaction::Transaction<'_>,
    item: &automerge::ObjId,
    now: i64,
    person: Option<&str>,
) -> Result<(), ItemError> {
    tx.put(item, "updated_at", crate::meta::stamp(now))
        .map_err(am)?;
    if let Some(p) = person {
        tx.put(item, "updated_by", p).map_err(am)?;
    }
    Ok(())
}

fn am(e: automerge::AutomergeError) -> ItemError {
    ItemError::Automerge(e.to_string())
}

/// Record ids are map keys shared by every replica: 1 to 64 ASCII letters,
/// digits, `-` or `_`.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn check(kind: ListKind, f: &ItemFields) -> Result<(), ItemError> {
    if let Some(t) = &f.title {
        let len = t.chars().count();
        if len == 0 || len > MAX_TITLE {
            return Err(ItemError::Title {
                len,
                max: MAX_TITLE,
            });
        }
    }
    for (field, v, max) in [
        ("category", &f.category, MAX_TITLE),
        ("area", &f.area, MAX_TITLE),
        ("grid", &f.grid, MAX_TITLE),
        ("description", &f.description, MAX_TEXT),
    ] {
        if v.as_ref().is_some_and(|s| s.chars().count() > max) {
            return Err(ItemError::TooLong { field, max });
        }
    }
    if f.urgent == Some(true) && kind != ListKind::Project {
        return Err(ItemError::UrgentNotProject);
    }
    if f.levels.as_ref().is_some_and(|l| !l.is_empty()) && kind != ListKind::Whistle {
        return Err(ItemError::LevelsNotWhistle);
    }
    Ok(())
}

/// Typed reads and writes of one list document.
#[derive(Debug)]
pub struct ListDoc<'a> {
    pub doc: &'a mut Automerge,
    pub kind: ListKind,
    /// The person (a user of the node) on whose behalf the node writes:
    /// recorded as `by` on a new record and `updated_by` on every update.
    /// The node's key signs; this names the person.
    pub person: Option<String>,
}

/// Longest person name recorded with a write.
pub const MAX_PERSON: usize = 64;

impl<'a> ListDoc<'a> {
    pub fn new(doc: &mut Automerge, kind: ListKind) -> ListDoc<'_> {
        ListDoc {
            doc,
            kind,
            person: None,
        }
    }

    /// The same document, its writes naming `person` (empty: nobody).
    pub fn by(self, person: &str) -> Result<ListDoc<'a>, ItemError> {
        if person.chars().count() > MAX_PERSON {
            return Err(ItemError::TooLong {
                field: "by",
                max: MAX_PERSON,
            });
        }
        Ok(ListDoc {
            person: (!person.is_empty()).then(|| person.to_owned()),
            ..self
        })
    }

    /// The list document whose genesis says `doc_type`: the kind comes from
    /// the signed genesis, never from the caller.
    pub fn open(doc: &mut Automerge, doc_type: DocType) -> Result<ListDoc<'_>, ItemError> {
        let kind = ListKind::of_doc_type(doc_type).ok_or(ItemError::NotAList(doc_type))?;
        Ok(ListDoc::new(doc, kind))
    }

    /// Adds a record in one local change; returns the change's raw bytes.
    pub fn add(&mut self, id: &str, fields: &ItemFields, now: i64) -> Result<Vec<u8>, ItemError> {
        if !valid_id(id) {
            return Err(ItemError::Id(id.to_owned()));
        }
        check(self.kind, fields)?;
        if fields.title.is_none() {
            return Err(ItemError::Title {
                len: 0,
                max: MAX_TITLE,
            });
        }
        if self.item_obj(id).is_some() {
            return Err(ItemError::Exists(id.to_owned()));
        }
        let mut tx = self.doc.transaction();
        let item = tx
            .put_object(automerge::ROOT, id, ObjType::Map)
            .map_err(am)?;
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        tx.put(&item, "title", text(&fields.title)).map_err(am)?;
        tx.put(&item, "category", text(&fields.category))
            .map_err(am)?;
        tx.put(&item, "description", text(&fields.description))
            .map_err(am)?;
        tx.put(&item, "area", text(&fields.area)).map_err(am)?;
        tx.put(&item, "grid", text(&fields.grid)).map_err(am)?;
        tx.put(&item, "urgent", fields.urgent.unwrap_or(false))
            .map_err(am)?;
        tx.put(&item, "status", ItemStatus::Open.as_str())
            .map_err(am)?;
        let levels: Vec<&str> = fields.levels.iter().flatten().map(|k| k.as_str()).collect();
        tx.put(&item, "levels", levels.join(",")).map_err(am)?;
        tx.put(&item, "created_at", crate::meta::stamp(now))
            .map_err(am)?;
        if let Some(p) = &self.person {
            tx.put(&item, "by", p.as_str()).map_err(am)?;
        }
        touch(&mut tx, &item, now, self.person.as_deref())?;
        if self.kind == ListKind::Problem {
            tx.put(&item, "level", ProblemLevel::Grid.as_str())
                .map_err(am)?;
            tx.put_object(&item, "escalations", ObjType::List)
                .map_err(am)?;
        }
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    /// Dispatches a whistle to one of the units that responded (派单), in
    /// one local change of the whistle's owner. `responders` are the units
    /// that answered at a called level (`whistle_responders`).
    pub fn dispatch(
        &mut self,
        id: &str,
        to: gongjian_identity::UnitId,
        responders: &[gongjian_identity::UnitId],
        now: i64,
    ) -> Result<Vec<u8>, ItemError> {
        if self.kind != ListKind::Whistle {
            return Err(ItemError::NotWhistle);
        }
        if !responders.contains(&to) {
            return Err(ItemError::NotResponder(to));
        }
        let item = self
            .item_obj(id)
            .ok_or_else(|| ItemError::NotFound(id.to_owned()))?;
        let mut tx = self.doc.transaction();
        tx.put(&item, "dispatched_to", to.to_string()).map_err(am)?;
        tx.put(&item, "status", ItemStatus::InProgress.as_str())
            .map_err(am)?;
        touch(&mut tx, &item, now, self.person.as_deref())?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    /// Moves a problem up to `to` (handled by `handler`), in one local change
    /// of its owner. Levels only go up.
    pub fn escalate(
        &mut self,
        id: &str,
        to: ProblemLevel,
        handler: Option<gongjian_identity::UnitId>,
        now: i64,
    ) -> Result<Vec<u8>, ItemError> {
        if self.kind != ListKind::Problem {
            return Err(ItemError::NotProblem);
        }
        let current = self
            .get(id)
            .ok_or_else(|| ItemError::NotFound(id.to_owned()))?;
        let from = current.level.unwrap_or(ProblemLevel::Grid);
        if to <= from {
            return Err(ItemError::NotUp {
                from: from.as_str(),
                to: to.as_str(),
            });
        }
        if let (Some(k), Some(h)) = (to.handler_kind(), handler)
            && h.implied_kind() != k
        {
            return Err(ItemError::HandlerLevel {
                handler: h,
                level: to.as_str(),
            });
        }
        let item = self
            .item_obj(id)
            .ok_or_else(|| ItemError::NotFound(id.to_owned()))?;
        let mut tx = self.doc.transaction();
        tx.put(&item, "level", to.as_str()).map_err(am)?;
        let handler_text = handler.map(|h| h.to_string()).unwrap_or_default();
        tx.put(&item, "handler", handler_text.as_str())
            .map_err(am)?;
        let list = match tx.get(&item, "escalations").map_err(am)? {
            Some((Value::Object(ObjType::List), l)) => l,
            _ => tx
                .put_object(&item, "escalations", ObjType::List)
                .map_err(am)?,
        };
        let n = tx.length(&list);
        let step = tx.insert_object(&list, n, ObjType::Map).map_err(am)?;
        tx.put(&step, "to", to.as_str()).map_err(am)?;
        tx.put(&step, "handler", handler_text.as_str())
            .map_err(am)?;
        tx.put(&step, "at", crate::meta::stamp(now)).map_err(am)?;
        touch(&mut tx, &item, now, self.person.as_deref())?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    /// Changes the given fields of a record in one local change. Each field
    /// is its own register: concurrent edits of different fields both stay.
    pub fn edit(&mut self, id: &str, fields: &ItemFields, now: i64) -> Result<Vec<u8>, ItemError> {
        check(self.kind, fields)?;
        let item = self
            .item_obj(id)
            .ok_or_else(|| ItemError::NotFound(id.to_owned()))?;
        let mut tx = self.doc.transaction();
        for (key, v) in [
            ("title", &fields.title),
            ("category", &fields.category),
            ("description", &fields.description),
            ("area", &fields.area),
            ("grid", &fields.grid),
        ] {
            if let Some(v) = v {
                tx.put(&item, key, v.as_str()).map_err(am)?;
            }
        }
        if let Some(u) = fields.urgent {
            tx.put(&item, "urgent", u).map_err(am)?;
        }
        if let Some(levels) = &fields.levels {
            let levels: Vec<&str> = levels.iter().map(|k| k.as_str()).collect();
            tx.put(&item, "levels", levels.join(",")).map_err(am)?;
        }
        touch(&mut tx, &item, now, self.person.as_deref())?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    /// Sets the status of a record in one local change.
    pub fn set_status(
        &mut self,
        id: &str,
        status: ItemStatus,
        now: i64,
    ) -> Result<Vec<u8>, ItemError> {
        let item = self
            .item_obj(id)
            .ok_or_else(|| ItemError::NotFound(id.to_owned()))?;
        let mut tx = self.doc.transaction();
        tx.put(&item, "status", status.as_str()).map_err(am)?;
        touch(&mut tx, &item, now, self.person.as_deref())?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    fn item_obj(&self, id: &str) -> Option<automerge::ObjId> {
        match self.doc.get(automerge::ROOT, id) {
            Ok(Some((Value::Object(ObjType::Map), obj))) => Some(obj),
            _ => None,
        }
    }

    fn last_change(&self, hash: Option<automerge::ChangeHash>) -> Result<Vec<u8>, ItemError> {
        crate::meta::local_change_bytes(self.doc, hash).map_err(ItemError::Automerge)
    }

    /// Every record, by creation time then id.
    pub fn list(&self) -> Vec<Item> {
        let doc = &*self.doc;
        let mut out = Vec::new();
        for entry in doc.map_range(automerge::ROOT, ..) {
            if !matches!(entry.value, automerge::ValueRef::Object(ObjType::Map)) {
                continue;
            }
            let obj = entry.id();
            out.push(read_item(doc, &obj, entry.key.into_owned(), self.kind));
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }

    pub fn get(&self, id: &str) -> Option<Item> {
        let obj = self.item_obj(id)?;
        Some(read_item(self.doc, &obj, id.to_owned(), self.kind))
    }
}

fn read_item(doc: &Automerge, obj: &automerge::ObjId, id: String, kind: ListKind) -> Item {
    // One walk over the record's fields; `get_all` only for the few fields
    // written concurrently.
    let fields = crate::meta::Fields::read(doc, obj);
    let text = |key: &str| fields.text(key);
    let title = text("title");
    let all_of = |key: &str| {
        if fields.conflicted(key) {
            doc.get_all(obj, key).unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let title_conflicts = all_of("title")
        .into_iter()
        .filter_map(|(v, _)| match v {
            Value::Scalar(s) => s.as_str().map(str::to_owned),
            _ => None,
        })
        .filter(|t| *t != title)
        .collect();
    let mut conflicts = std::collections::BTreeMap::new();
    for key in [
        "title",
        "category",
        "description",
        "area",
        "grid",
        "urgent",
        "status",
        "dispatched_to",
        "levels",
    ] {
        let all = all_of(key);
        if all.len() < 2 {
            continue;
        }
        // get_all lists the winner last; the others are the conflict.
        let shown = |v: &Value<'_>| match v {
            Value::Scalar(s) => match s.as_ref() {
                ScalarValue::Str(t) => t.to_string(),
                ScalarValue::Boolean(b) => b.to_string(),
                other => other.to_string(),
            },
            Value::Object(t) => format!("({t:?})"),
        };
        let winner = doc.get(obj, key).ok().flatten().map(|(v, _)| shown(&v));
        let others: Vec<String> = all
            .iter()
            .map(|(v, _)| shown(v))
            .filter(|v| Some(v) != winner.as_ref())
            .collect();
        if !others.is_empty() {
            conflicts.insert(key.to_owned(), others);
        }
    }
    let urgent = fields.is_true("urgent");
    let meta = fields.meta();
    let last_op = fields.last_op().map(|(c, a)| (c, a.to_bytes().to_vec()));
    let level = fields
        .str("level")
        .and_then(|t| t.parse::<ProblemLevel>().ok());
    let mut escalations = Vec::new();
    if let Some(list) = fields.object("escalations", ObjType::List) {
        for i in 0..doc.length(&list) {
            let Ok(Some((Value::Object(ObjType::Map), step))) = doc.get(&list, i) else {
                continue;
            };
            let get = |k: &str| match doc.get(&step, k) {
                Ok(Some((Value::Scalar(s), _))) => Some(s.into_owned()),
                _ => None,
            };
            let Some(to) = get("to").and_then(|s| s.as_str().and_then(|t| t.parse().ok())) else {
                continue;
            };
            let handler = get("handler").and_then(|s| s.as_str().and_then(|t| t.parse().ok()));
            let at = match get("at") {
                Some(ScalarValue::Timestamp(ms)) => ms / 1000,
                _ => 0,
            };
            escalations.push(Escalation { to, handler, at });
        }
    }
    // Concurrent escalations by two keys of the owner: the level is the
    // highest step reached, whatever the register kept, and the history
    // reads in level order.
    escalations.sort_by_key(|e| (e.to, e.at, e.handler));
    // The level comes from the escalation records only: a raw write of the
    // `level` register cannot move a problem without a step.
    let level = match escalations.last() {
        Some(top) => Some(top.to),
        None => level.map(|_| ProblemLevel::Grid),
    };
    Item {
        status: text("status").parse().unwrap_or(ItemStatus::Open),
        category: text("category"),
        description: text("description"),
        area: text("area"),
        grid: text("grid"),
        created_at: meta.created_at,
        updated_at: meta.updated_at,
        urgent,
        last_author: meta.last_author,
        title,
        title_conflicts,
        conflicts,
        level,
        escalations,
        dispatched_to: text("dispatched_to").parse().ok(),
        levels: text("levels")
            .split(',')
            .filter_map(|k| k.parse().ok())
            .collect(),
        by: crate::meta::person(&text("by")),
        updated_by: crate::meta::person(&text("updated_by")),
        last_op,
        id,
        kind,
    }
}
