//! A unit's list of needs (需求清单) as an automerge document: the root map
//! holds one map per need, keyed by the need's global id.

use std::fmt;
use std::str::FromStr;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{Automerge, ObjType, ReadDoc, ScalarValue, Value};
use serde::{Deserialize, Serialize};

/// The one status vocabulary of every list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NeedStatus {
    Open,
    InProgress,
    Resolved,
    Closed,
}

impl NeedStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            NeedStatus::Open => "open",
            NeedStatus::InProgress => "in_progress",
            NeedStatus::Resolved => "resolved",
            NeedStatus::Closed => "closed",
        }
    }
    pub fn label_zh(&self) -> &'static str {
        match self {
            NeedStatus::Open => "待认领",
            NeedStatus::InProgress => "办理中",
            NeedStatus::Resolved => "已解决",
            NeedStatus::Closed => "已关闭",
        }
    }
}

impl fmt::Display for NeedStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for NeedStatus {
    type Err = NeedError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(match s {
            "open" => NeedStatus::Open,
            "in_progress" => NeedStatus::InProgress,
            "resolved" => NeedStatus::Resolved,
            "closed" => NeedStatus::Closed,
            other => return Err(NeedError::Status(other.to_owned())),
        })
    }
}

/// One need as read from the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Need {
    pub id: String,
    pub title: String,
    pub category: String,
    pub description: String,
    pub status: NeedStatus,
    pub created_at: i64,
    /// Concurrent values of the title that automerge kept besides `title`.
    pub title_conflicts: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NeedError {
    #[error("title must be 1 to {max} characters, got {len}")]
    Title { len: usize, max: usize },
    #[error("{field} is longer than {max} characters")]
    TooLong { field: &'static str, max: usize },
    #[error("unknown status `{0}` (open, in_progress, resolved, closed)")]
    Status(String),
    #[error("no need with id `{0}`")]
    NotFound(String),
    #[error("automerge: {0}")]
    Automerge(String),
}

const MAX_TITLE: usize = 200;
const MAX_TEXT: usize = 4000;

fn am(e: automerge::AutomergeError) -> NeedError {
    NeedError::Automerge(e.to_string())
}

fn check_len(field: &'static str, s: &str, max: usize) -> Result<(), NeedError> {
    if s.chars().count() > max {
        return Err(NeedError::TooLong { field, max });
    }
    Ok(())
}

/// Typed reads and writes of a needs document.
#[derive(Debug)]
pub struct NeedsDoc<'a>(pub &'a mut Automerge);

impl NeedsDoc<'_> {
    /// Adds a need in one local change; returns the change's raw bytes.
    pub fn add(
        &mut self,
        id: &str,
        title: &str,
        category: &str,
        description: &str,
        now: i64,
    ) -> Result<Vec<u8>, NeedError> {
        let len = title.chars().count();
        if len == 0 || len > MAX_TITLE {
            return Err(NeedError::Title {
                len,
                max: MAX_TITLE,
            });
        }
        check_len("category", category, MAX_TITLE)?;
        check_len("description", description, MAX_TEXT)?;
        let mut tx = self.0.transaction();
        let item = tx
            .put_object(automerge::ROOT, id, ObjType::Map)
            .map_err(am)?;
        tx.put(&item, "title", title).map_err(am)?;
        tx.put(&item, "category", category).map_err(am)?;
        tx.put(&item, "description", description).map_err(am)?;
        tx.put(&item, "status", NeedStatus::Open.as_str())
            .map_err(am)?;
        tx.put(&item, "created_at", ScalarValue::Timestamp(now * 1000))
            .map_err(am)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    /// Sets the status of a need in one local change.
    pub fn set_status(
        &mut self,
        id: &str,
        status: NeedStatus,
        now: i64,
    ) -> Result<Vec<u8>, NeedError> {
        let item = match self.0.get(automerge::ROOT, id).map_err(am)? {
            Some((Value::Object(ObjType::Map), obj)) => obj,
            _ => return Err(NeedError::NotFound(id.to_owned())),
        };
        let mut tx = self.0.transaction();
        tx.put(&item, "status", status.as_str()).map_err(am)?;
        let (hash, _) = tx.commit_with(CommitOptions::default().with_time(now));
        self.last_change(hash)
    }

    fn last_change(&self, hash: Option<automerge::ChangeHash>) -> Result<Vec<u8>, NeedError> {
        let hash = hash.ok_or_else(|| NeedError::Automerge("empty change".into()))?;
        let change = self
            .0
            .get_last_local_change()
            .filter(|c| c.hash() == hash)
            .ok_or_else(|| NeedError::Automerge("local change not found".into()))?;
        Ok(change.raw_bytes().to_vec())
    }

    /// Every need, sorted by creation time then id.
    pub fn list(&self) -> Vec<Need> {
        let doc = &*self.0;
        let text = |obj: &automerge::ObjId, key: &str| -> String {
            match doc.get(obj, key) {
                Ok(Some((Value::Scalar(s), _))) => s.as_str().unwrap_or_default().to_owned(),
                _ => String::new(),
            }
        };
        let mut out = Vec::new();
        for id in doc.keys(automerge::ROOT) {
            let Ok(Some((Value::Object(ObjType::Map), obj))) =
                doc.get(automerge::ROOT, id.as_str())
            else {
                continue;
            };
            let title = text(&obj, "title");
            let title_conflicts = doc
                .get_all(&obj, "title")
                .unwrap_or_default()
                .into_iter()
                .filter_map(|(v, _)| match v {
                    Value::Scalar(s) => s.as_str().map(str::to_owned),
                    _ => None,
                })
                .filter(|t| *t != title)
                .collect();
            let created_at = match doc.get(&obj, "created_at") {
                Ok(Some((Value::Scalar(s), _))) => match s.as_ref() {
                    ScalarValue::Timestamp(ms) => ms / 1000,
                    _ => 0,
                },
                _ => 0,
            };
            out.push(Need {
                status: text(&obj, "status").parse().unwrap_or(NeedStatus::Open),
                category: text(&obj, "category"),
                description: text(&obj, "description"),
                title,
                created_at,
                title_conflicts,
                id,
            });
        }
        out.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        out
    }
}
