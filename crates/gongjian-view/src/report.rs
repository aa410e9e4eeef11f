//! The monthly report a street or district sends upward: problems found
//! and resolved per level and per area, what each list gained and
//! resolved, projects and micro-wishes claimed, agreements by status.
//! Figures are counted from the merged view as this node holds it now:
//! each record's current state (its level, its status and when that was
//! last set), so a past month's report moves when its records are edited
//! later. "Resolved" counts resolved and closed records alike.

use std::collections::BTreeMap;

use gongjian_identity::UnitId;
use gongjian_model::{AgreementStatus, ListKind, ProblemLevel};
use serde::Serialize;

use crate::{AgreementQuery, ItemRow, View};

/// Problems found and resolved at one level in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LevelFigures {
    pub level: &'static str,
    pub level_zh: &'static str,
    /// Problems recorded in the period that reached this level.
    pub found: u64,
    /// Problems at this level reported resolved in the period.
    pub resolved: u64,
}

/// Problems found and resolved in one area (street, or community within a
/// street) in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AreaFigures {
    pub area: Option<UnitId>,
    pub area_name: Option<String>,
    pub found: u64,
    pub resolved: u64,
}

/// One list's figures in the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListFigures {
    pub list: &'static str,
    pub list_zh: &'static str,
    /// Records created in the period.
    pub created: u64,
    /// Records reported resolved in the period.
    pub resolved: u64,
    /// Records a unit first claimed, responded to or took in the period.
    pub claimed: u64,
    /// Records not resolved or closed at the end of the period.
    pub open_at_end: u64,
}

/// Agreements with a party in scope.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AgreementFigures {
    /// By derived status at the end of the period.
    pub draft: u64,
    pub signed: u64,
    pub active: u64,
    pub expired: u64,
    pub terminated: u64,
    /// Signatures made in the period.
    pub signatures: u64,
    /// Signed or active agreements whose term ends within 30 days of the
    /// end of the period.
    pub expiring_30_days: u64,
}

/// The monthly report of a scope.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub scope: UnitId,
    pub scope_name: Option<String>,
    /// Unix seconds, `from` inclusive, `to` exclusive.
    pub from: i64,
    pub to: i64,
    pub problems: Vec<LevelFigures>,
    pub problems_by_area: Vec<AreaFigures>,
    pub lists: Vec<ListFigures>,
    pub agreements: AgreementFigures,
}

const LEVELS: [ProblemLevel; 5] = [
    ProblemLevel::Grid,
    ProblemLevel::Zone,
    ProblemLevel::Community,
    ProblemLevel::Street,
    ProblemLevel::District,
];

impl View {
    /// When a record was reported resolved or closed, if it is: the latest
    /// of the owner's update and the counting acts (a handler's handling
    /// act). The view keeps each record's current state, not its history:
    /// a later edit of a resolved record moves this time.
    fn resolved_at(&self, row: &ItemRow) -> Option<i64> {
        if !matches!(self.status_of(row), "resolved" | "closed") {
            return None;
        }
        let acts = self
            .acts_on(&row.id)
            .into_iter()
            .filter(|a| a.kind == "handling" && self.act_counts(row, a))
            .map(|a| a.created_at)
            .max();
        Some(acts.map_or(row.updated_at, |a| a.max(row.updated_at)))
    }

    /// When a unit first claimed, responded to or took the record.
    fn claimed_at(&self, row: &ItemRow) -> Option<i64> {
        self.acts_on(&row.id)
            .into_iter()
            .filter(|a| matches!(a.kind, "claim" | "response" | "take"))
            .filter(|a| self.act_counts(row, a))
            .map(|a| a.created_at)
            .min()
    }

    /// The figures of `scope` for the period `[from, to)`; problems by
    /// area are per street (per community when the scope is a street or
    /// below).
    pub fn report(&self, scope: &UnitId, from: i64, to: i64) -> Report {
        let within = |t: i64| t >= from && t < to;
        let scope_kind = self.place(scope).map(|p| p.kind);
        let by_community = !matches!(scope_kind, Some(gongjian_identity::UnitKind::District));
        let mut levels: BTreeMap<ProblemLevel, (u64, u64)> = BTreeMap::new();
        let mut areas: BTreeMap<Option<UnitId>, (u64, u64)> = BTreeMap::new();
        let mut lists: Vec<ListFigures> = ListKind::ALL
            .iter()
            .map(|k| ListFigures {
                list: k.as_str(),
                list_zh: k.label_zh(),
                created: 0,
                resolved: 0,
                claimed: 0,
                open_at_end: 0,
            })
            .collect();
        for r in self.items.values() {
            if !self.in_scope(&r.unit, scope) || r.created_at >= to {
                continue;
            }
            let resolved = self.resolved_at(r).filter(|t| *t < to);
            if let Some(f) = lists.iter_mut().find(|f| f.list == r.list) {
                f.created += u64::from(within(r.created_at));
                f.resolved += u64::from(resolved.is_some_and(within));
                f.claimed += u64::from(self.claimed_at(r).is_some_and(within));
                f.open_at_end += u64::from(resolved.is_none());
            }
            if r.list != ListKind::Problem.as_str() {
                continue;
            }
            let level = r
                .level
                .and_then(|l| l.parse::<ProblemLevel>().ok())
                .unwrap_or(ProblemLevel::Grid);
            let place = self.place(&r.unit);
            let area = if by_community {
                place.and_then(|p| p.community)
            } else {
                place.and_then(|p| p.street)
            };
            let (l, a) = (
                levels.entry(level).or_default(),
                areas.entry(area).or_default(),
            );
            if within(r.created_at) {
                l.0 += 1;
                a.0 += 1;
            }
            if resolved.is_some_and(within) {
                l.1 += 1;
                a.1 += 1;
            }
        }
        let mut agreements = AgreementFigures::default();
        // The statuses as they stood at the end of the period.
        let at_end = to.saturating_sub(1);
        for v in self
            .agreements(scope, &AgreementQuery::default(), at_end)
            .unwrap_or_default()
            .into_iter()
            .filter(|v| v.row.created_at < to)
        {
            match v.status {
                AgreementStatus::Draft => agreements.draft += 1,
                AgreementStatus::Signed => agreements.signed += 1,
                AgreementStatus::Active => agreements.active += 1,
                AgreementStatus::Expired => agreements.expired += 1,
                AgreementStatus::Terminated => agreements.terminated += 1,
            }
            if matches!(v.status, AgreementStatus::Signed | AgreementStatus::Active)
                && v.ends_in_days.is_some_and(|d| d <= 30)
            {
                agreements.expiring_30_days += 1;
            }
            agreements.signatures += self
                .acts_on(&format!("{}.", v.row.id))
                .into_iter()
                .filter(|a| a.kind == "sign" && v.row.parties.contains(&a.unit))
                .filter(|a| within(a.created_at))
                .count() as u64;
        }
        let mut problems_by_area: Vec<AreaFigures> = areas
            .into_iter()
            .map(|(area, (found, resolved))| AreaFigures {
                area,
                area_name: area.and_then(|a| self.place(&a)).map(|p| p.name.clone()),
                found,
                resolved,
            })
            .collect();
        problems_by_area
            .sort_by_cached_key(|a| crate::pinyin_key(a.area_name.as_deref().unwrap_or_default()));
        Report {
            scope: *scope,
            scope_name: self.place(scope).map(|p| p.name.clone()),
            from,
            to,
            problems: LEVELS
                .iter()
                .map(|l| {
                    let (found, resolved) = levels.get(l).copied().unwrap_or_default();
                    LevelFigures {
                        level: l.as_str(),
                        level_zh: l.label_zh(),
                        found,
                        resolved,
                    }
                })
                .collect(),
            problems_by_area,
            lists,
            agreements,
        }
    }
}
