//! Questions asked of the view: filtered, paged item lists with the acts
//! joined to them, and counts by area × list × status.

use std::collections::BTreeMap;

use gongjian_identity::UnitId;
use gongjian_model::{ItemStatus, ListKind};
use serde::{Deserialize, Serialize};

use crate::{ActRow, ItemRow, View};

/// Largest page.
pub const MAX_LIMIT: usize = 1000;
/// Page size when none is asked for.
pub const DEFAULT_LIMIT: usize = 100;

/// A bad query: which parameter and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{param}: {why}")]
pub struct QueryError {
    pub param: &'static str,
    pub why: String,
}

pub(crate) fn bad(param: &'static str, why: impl Into<String>) -> QueryError {
    QueryError {
        param,
        why: why.into(),
    }
}

/// Filters of `GET /v1/view/items` (all optional).
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ItemQuery {
    pub list: Option<String>,
    pub status: Option<String>,
    pub unit: Option<String>,
    pub street: Option<String>,
    pub community: Option<String>,
    pub category: Option<String>,
    pub urgent: Option<bool>,
    pub claimed: Option<bool>,
    /// Text search in title, description, category (works for Chinese:
    /// substring, not word, matching).
    pub q: Option<String>,
    pub limit: Option<usize>,
    pub cursor: Option<String>,
    /// The unit whose subtree to list (the API checks and resolves it;
    /// the view takes the scope as an argument).
    pub scope: Option<String>,
}

struct Filter {
    list: Option<ListKind>,
    status: Option<ItemStatus>,
    unit: Option<UnitId>,
    street: Option<UnitId>,
    community: Option<UnitId>,
    category: Option<String>,
    urgent: Option<bool>,
    claimed: Option<bool>,
    q: Option<String>,
    limit: usize,
    after: Option<(i64, String)>,
}

fn unit(param: &'static str, v: &Option<String>) -> Result<Option<UnitId>, QueryError> {
    v.as_deref()
        .map(|s| s.parse().map_err(|e| bad(param, format!("`{s}`: {e}"))))
        .transpose()
}

impl ItemQuery {
    fn check(&self) -> Result<Filter, QueryError> {
        let list = self
            .list
            .as_deref()
            .map(|s| {
                s.parse::<ListKind>().map_err(|_| {
                    bad(
                        "list",
                        format!(
                            "`{s}` is not one of need, resource, service, project, responsibility, problem, wish, whistle"
                        ),
                    )
                })
            })
            .transpose()?;
        let status = self
            .status
            .as_deref()
            .map(|s| {
                s.parse::<ItemStatus>().map_err(|_| {
                    bad(
                        "status",
                        format!("`{s}` is not one of open, in_progress, resolved, closed"),
                    )
                })
            })
            .transpose()?;
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if limit == 0 || limit > MAX_LIMIT {
            return Err(bad("limit", format!("{limit}: must be 1..={MAX_LIMIT}")));
        }
        let after = self
            .cursor
            .as_deref()
            .map(|c| {
                c.split_once(':')
                    .and_then(|(t, id)| Some((t.parse::<i64>().ok()?, id.to_owned())))
                    .ok_or_else(|| bad("cursor", "not a cursor this API returned"))
            })
            .transpose()?;
        if let Some(q) = &self.q
            && q.chars().count() > 200
        {
            return Err(bad("q", "longer than 200 characters"));
        }
        Ok(Filter {
            list,
            status,
            unit: unit("unit", &self.unit)?,
            street: unit("street", &self.street)?,
            community: unit("community", &self.community)?,
            category: self.category.clone(),
            urgent: self.urgent,
            claimed: self.claimed,
            q: self
                .q
                .as_deref()
                .map(str::trim)
                .filter(|q| !q.is_empty())
                .map(str::to_lowercase),
            limit,
            after,
        })
    }
}

/// An item with its place in the tree and the acts joined to it.
#[derive(Debug, Clone, Serialize)]
pub struct ItemView {
    #[serde(flatten)]
    pub row: ItemRow,
    pub unit_name: Option<String>,
    pub street: Option<UnitId>,
    pub community: Option<UnitId>,
    /// Claims, responses, handling … written by other units in their own
    /// documents, oldest first: only acts their author may make (see
    /// [`View::act_counts`]).
    pub acts: Vec<ActRow>,
    /// Acts other units wrote about this record that the rules do not
    /// give them (a response from a level the whistle did not call, a
    /// handling act from a unit it was never escalated to …): counted, not
    /// joined.
    pub acts_ignored: usize,
    /// Whether a unit claimed, responded to or took it.
    pub claimed: bool,
    /// The status the owner wrote (`status` may be its handler's).
    pub owner_status: &'static str,
}

/// One page of items.
#[derive(Debug, Clone, Serialize)]
pub struct ItemPage {
    pub items: Vec<ItemView>,
    /// Pass as `cursor` for the next page; absent on the last.
    pub next_cursor: Option<String>,
}

/// Grouping of `stats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsBy {
    Street,
    Community,
    Unit,
}

/// A count of items in one area, list and status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatRow {
    pub area: Option<UnitId>,
    pub area_name: Option<String>,
    pub list: &'static str,
    pub status: &'static str,
    pub count: u64,
}

/// Whether `q` (lowercased) is in the row's title, other titles,
/// description or category, case-insensitively. A search with no cased
/// letter (Chinese, digits) is matched as is: lowercasing every row on each
/// query was most of a search's time at ×10 (BENCHMARKS.md).
fn text_matches(r: &ItemRow, q: &str) -> bool {
    let mut fields = std::iter::once(&r.title)
        .chain(&r.title_conflicts)
        .chain([&r.description, &r.category]);
    if q.chars().any(|c| c.is_lowercase() || c.is_uppercase()) {
        fields.any(|t| t.to_lowercase().contains(q))
    } else {
        fields.any(|t| t.contains(q))
    }
}

impl View {
    /// Whether an act joins the record it targets: only the acts the rules
    /// give their author (the API refuses the others, but another node's
    /// unit can write anything in its own acts document).
    /// - claim: a project or micro-wish, by any unit but its owner;
    /// - response: a whistle, by a unit of a level it calls;
    /// - take: a whistle, by the unit its order was dispatched to;
    /// - handling: a problem, by a unit an escalation step named, above
    ///   its owner in the tree.
    pub fn act_counts(&self, row: &ItemRow, act: &ActRow) -> bool {
        if act.unit == row.unit {
            return false;
        }
        match act.kind {
            "claim" => matches!(row.list, "project" | "wish"),
            "response" => {
                row.list == "whistle"
                    && (row.levels.is_empty()
                        || self
                            .place(&act.unit)
                            .is_some_and(|p| row.levels.contains(&p.kind.as_str())))
            }
            "take" => row.list == "whistle" && row.dispatched_to == Some(act.unit),
            "handling" => {
                row.list == "problem"
                    && row.handlers.contains(&act.unit)
                    && self.in_scope(&row.unit, &act.unit)
            }
            _ => false,
        }
    }

    /// Whether `unit` handles problem `row` now: the handler its latest
    /// escalation names, of the kind that level calls for, above its owner
    /// (the API lets only this unit set its status; the view takes only
    /// its handling acts for the status shown).
    pub fn may_handle(&self, row: &ItemRow, unit: &UnitId) -> bool {
        row.list == "problem"
            && row.escalated_to == Some(*unit)
            && *unit != row.unit
            && row
                .handler_kind
                .is_some_and(|k| self.place(unit).is_some_and(|p| p.kind == k))
            && self.in_scope(&row.unit, unit)
    }

    /// The status the merged view shows: for a problem escalated to a
    /// handler (of the kind its level calls for, above its owner), that
    /// handler's latest handling act (its note is the status); otherwise
    /// the owner's. The same rule as `gongjian_model::problem_handlings`.
    pub(crate) fn status_of(&self, row: &ItemRow) -> &'static str {
        let Some(handler) = row.escalated_to else {
            return row.status;
        };
        if !self.may_handle(row, &handler) {
            return row.status;
        }
        self.acts_on(&row.id)
            .into_iter()
            .rev()
            .find(|a| a.kind == "handling" && a.unit == handler)
            .map(|a| match a.note.parse::<ItemStatus>() {
                Ok(s) => s.as_str(),
                Err(_) if a.resolved => ItemStatus::Resolved.as_str(),
                Err(_) => ItemStatus::InProgress.as_str(),
            })
            .unwrap_or(row.status)
    }

    pub(crate) fn view_of(&self, row: &ItemRow) -> ItemView {
        let place = self.place(&row.unit);
        let (acts, ignored): (Vec<ActRow>, Vec<ActRow>) = self
            .acts_on(&row.id)
            .into_iter()
            .cloned()
            .partition(|a| self.act_counts(row, a));
        let claimed = acts
            .iter()
            .any(|a| matches!(a.kind, "claim" | "response" | "take"));
        let mut shown = row.clone();
        shown.status = self.status_of(row);
        shown.status_zh = shown
            .status
            .parse::<ItemStatus>()
            .map(|s| s.label_zh())
            .unwrap_or(row.status_zh);
        ItemView {
            row: shown,
            unit_name: place.map(|p| p.name.clone()),
            street: place.and_then(|p| p.street),
            community: place.and_then(|p| p.community),
            acts,
            acts_ignored: ignored.len(),
            claimed,
            owner_status: row.owner_status,
        }
    }

    /// Items within `scope` matching `q`, newest first, one page.
    pub fn items(&self, scope: &UnitId, q: &ItemQuery) -> Result<ItemPage, QueryError> {
        let f = q.check()?;
        let mut rows: Vec<&ItemRow> = self
            .items
            .values()
            .filter(|r| self.in_scope(&r.unit, scope))
            .filter(|r| f.list.is_none_or(|l| r.list == l.as_str()))
            .filter(|r| f.status.is_none_or(|s| self.status_of(r) == s.as_str()))
            .filter(|r| f.unit.is_none_or(|u| r.unit == u))
            .filter(|r| f.street.is_none_or(|s| self.in_scope(&r.unit, &s)))
            .filter(|r| f.community.is_none_or(|c| self.in_scope(&r.unit, &c)))
            .filter(|r| f.category.as_ref().is_none_or(|c| &r.category == c))
            .filter(|r| f.urgent.is_none_or(|u| r.urgent == u))
            .filter(|r| f.q.as_ref().is_none_or(|q| text_matches(r, q)))
            .collect();
        rows.sort_by(|a, b| (b.created_at, &a.id).cmp(&(a.created_at, &b.id)));
        let mut out = Vec::new();
        let mut more = false;
        for r in rows {
            // Newest first, then by id: skip what the cursor's page held
            // (no arithmetic on the cursor's number: any i64 is safe).
            if let Some((t, id)) = &f.after
                && (std::cmp::Reverse(r.created_at), &r.id) <= (std::cmp::Reverse(*t), id)
            {
                continue;
            }
            let v = self.view_of(r);
            if f.claimed.is_some_and(|c| v.claimed != c) {
                continue;
            }
            if out.len() == f.limit {
                more = true;
                break;
            }
            out.push(v);
        }
        let next_cursor = more
            .then(|| {
                out.last()
                    .map(|v| format!("{}:{}", v.row.created_at, v.row.id))
            })
            .flatten();
        Ok(ItemPage {
            items: out,
            next_cursor,
        })
    }

    /// One item with its acts, if this node holds it and it is in scope.
    pub fn item_view(&self, scope: &UnitId, id: &str) -> Option<ItemView> {
        let row = self.item(id)?;
        self.in_scope(&row.unit, scope).then(|| self.view_of(row))
    }

    /// One item with its acts, if this node holds it (whatever its place:
    /// a unit acts on records of units above it too).
    pub fn item_view_held(&self, id: &str) -> Option<ItemView> {
        self.item(id).map(|row| self.view_of(row))
    }

    /// Counts of items within `scope` by area × list × status.
    pub fn stats(&self, scope: &UnitId, by: StatsBy) -> Vec<StatRow> {
        let mut counts: BTreeMap<(Option<UnitId>, &'static str, &'static str), u64> =
            BTreeMap::new();
        for r in self.items.values() {
            if !self.in_scope(&r.unit, scope) {
                continue;
            }
            let place = self.place(&r.unit);
            let area = match by {
                StatsBy::Street => place.and_then(|p| p.street),
                StatsBy::Community => place.and_then(|p| p.community),
                StatsBy::Unit => Some(r.unit),
            };
            *counts.entry((area, r.list, self.status_of(r))).or_default() += 1;
        }
        counts
            .into_iter()
            .map(|((area, list, status), count)| StatRow {
                area,
                area_name: area.and_then(|a| self.place(&a)).map(|p| p.name.clone()),
                list,
                status,
                count,
            })
            .collect()
    }
}
