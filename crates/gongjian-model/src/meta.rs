//! What every record carries besides its fields: when it was created and
//! last updated, and the key of the author of its last change (from the
//! automerge op ids, so it cannot be typed in).

use automerge::{Automerge, ObjId, ReadDoc, ScalarValue, Value};
use gongjian_identity::PublicKey;
use serde::{Deserialize, Serialize};

/// Created and updated times (Unix seconds) and the last author of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordMeta {
    pub created_at: i64,
    pub updated_at: i64,
    pub last_author: Option<PublicKey>,
}

/// A time (Unix seconds) as automerge stores it.
pub(crate) fn stamp(secs: i64) -> ScalarValue {
    ScalarValue::Timestamp(secs.saturating_mul(1000))
}

/// The time (Unix seconds) at `key` of `obj`; 0 when absent or not a time.
pub(crate) fn time(doc: &Automerge, obj: &ObjId, key: &str) -> i64 {
    match doc.get(obj, key) {
        Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
            ScalarValue::Timestamp(ms) => ms / 1000,
            _ => 0,
        },
        _ => 0,
    }
}

/// Reads `created_at`, `updated_at` and the author of the latest op on any
/// field of the record's map.
pub(crate) fn read_meta(doc: &Automerge, obj: &ObjId) -> RecordMeta {
    Fields::read(doc, obj).meta()
}

/// A record map's fields read in one walk (automerge's `map_range`): each
/// key's winning value and the op that wrote it, and whether other values
/// were written concurrently. Reading a record field by field costs a
/// lookup in the op set each; the view reads every record of every
/// document, so it reads them this way.
pub struct Fields<'a> {
    items: Vec<automerge::iter::MapRangeItem<'a>>,
}

impl std::fmt::Debug for Fields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.items.iter().map(|i| (&i.key, &i.value, i.conflict)))
            .finish()
    }
}

impl<'a> Fields<'a> {
    pub fn read(doc: &'a Automerge, obj: &ObjId) -> Fields<'a> {
        Fields {
            items: doc.map_range(obj, ..).collect(),
        }
    }

    fn item(&self, key: &str) -> Option<&automerge::iter::MapRangeItem<'a>> {
        self.items.iter().find(|i| i.key == key)
    }

    fn scalar(&self, key: &str) -> Option<&automerge::ScalarValueRef<'a>> {
        match self.item(key).map(|i| &i.value) {
            Some(automerge::ValueRef::Scalar(s)) => Some(s),
            _ => None,
        }
    }

    /// The text at `key`; empty when absent or not text.
    pub fn text(&self, key: &str) -> String {
        self.str(key).unwrap_or_default().to_owned()
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.scalar(key) {
            Some(automerge::ScalarValueRef::Str(s)) => Some(s.as_ref()),
            _ => None,
        }
    }

    /// The time (Unix seconds) at `key`; 0 when absent or not a time.
    pub fn time(&self, key: &str) -> i64 {
        match self.scalar(key) {
            Some(automerge::ScalarValueRef::Timestamp(ms)) => ms / 1000,
            _ => 0,
        }
    }

    /// The count at `key` (an unsigned or a non-negative integer); 0 when
    /// absent or not one.
    pub fn count(&self, key: &str) -> u64 {
        match self.scalar(key) {
            Some(automerge::ScalarValueRef::Uint(n)) => *n,
            Some(automerge::ScalarValueRef::Int(n)) => u64::try_from(*n).unwrap_or(0),
            _ => 0,
        }
    }

    pub fn is_true(&self, key: &str) -> bool {
        matches!(
            self.scalar(key),
            Some(automerge::ScalarValueRef::Boolean(true))
        )
    }

    /// Whether other values of `key` were written concurrently.
    pub fn conflicted(&self, key: &str) -> bool {
        self.item(key).is_some_and(|i| i.conflict)
    }

    /// The object at `key`, if it is one of type `ty`.
    pub fn object(&self, key: &str, ty: automerge::ObjType) -> Option<ObjId> {
        let i = self.item(key)?;
        matches!(i.value, automerge::ValueRef::Object(t) if t == ty).then(|| i.id())
    }

    /// The newest op among the winning values: its counter and actor.
    pub fn last_op(&self) -> Option<(u64, automerge::ActorId)> {
        let mut last: Option<(u64, automerge::ActorId)> = None;
        for i in &self.items {
            if let ObjId::Id(counter, actor, _) = i.id()
                && last.as_ref().is_none_or(|(c, _)| counter > *c)
            {
                last = Some((counter, actor));
            }
        }
        last
    }

    /// What [`read_meta`] reads, from the fields already read.
    pub fn meta(&self) -> RecordMeta {
        let last_author = self
            .last_op()
            .and_then(|(_, a)| {
                a.to_bytes()
                    .get(..32)
                    .and_then(|k| <[u8; 32]>::try_from(k).ok())
            })
            .and_then(|k| PublicKey::from_bytes(k).ok());
        let created_at = self.time("created_at");
        let updated_at = match self.time("updated_at") {
            0 => created_at,
            t => t,
        };
        RecordMeta {
            created_at,
            updated_at,
            last_author,
        }
    }
}

/// The record map `id` at the root of a document.
pub(crate) fn record_obj(doc: &Automerge, id: &str) -> Option<ObjId> {
    match doc.get(automerge::ROOT, id) {
        Ok(Some((Value::Object(automerge::ObjType::Map), obj))) => Some(obj),
        _ => None,
    }
}

/// The raw bytes of the local change just committed as `hash` (an empty
/// commit has none).
pub(crate) fn local_change_bytes(
    doc: &Automerge,
    hash: Option<automerge::ChangeHash>,
) -> Result<Vec<u8>, String> {
    let hash = hash.ok_or("empty change")?;
    doc.get_last_local_change()
        .filter(|c| c.hash() == hash)
        .map(|c| c.raw_bytes().to_vec())
        .ok_or_else(|| "local change not found".to_owned())
}

/// The persons recorded on a record (`by`, `updated_by`) as another node
/// wrote them: cut to [`crate::lists::MAX_PERSON`] characters, control
/// characters replaced, so that a peer's record cannot inject terminal
/// escapes or flood a page.
pub(crate) fn persons(doc: &Automerge, obj: &ObjId) -> (String, String) {
    let get = |k: &str| match doc.get(obj, k) {
        Ok(Some((Value::Scalar(s), _))) => person(s.as_str().unwrap_or_default()),
        _ => String::new(),
    };
    (get("by"), get("updated_by"))
}

/// A person's name as read from a record (see [`persons`]).
pub(crate) fn person(s: &str) -> String {
    s.chars()
        .take(crate::lists::MAX_PERSON)
        .map(|c| if c.is_control() { '\u{fffd}' } else { c })
        .collect()
}
