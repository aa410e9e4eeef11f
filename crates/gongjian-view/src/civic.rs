//! Grids, co-building agreements and matches: rows read from grids and
//! agreement documents, and the joins that need the whole view (an
//! agreement's status from every party's signatures; the grid tree with
//! counts summed up each level; open needs beside resources).

use std::collections::BTreeMap;

use automerge::Automerge;
use gongjian_identity::{DocId, Hash, UnitId};
use gongjian_model::{
    AgreementDoc, AgreementStatus, Grid, GridNode, GridsDoc, Terms, agreement_status, grid_tree,
};
use serde::{Deserialize, Serialize};

use crate::query::{QueryError, bad};
use crate::rows::{ChangeIndex, Provenance, global_id, latest, record};
use crate::{ItemRow, ItemView, View};

/// A grid as its unit wrote it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GridRow {
    /// Global id: document id, `.`, grid id.
    pub id: String,
    pub unit: UnitId,
    pub grid: Grid,
    /// The persons the owning node recorded: who wrote the grid, who last
    /// updated it.
    pub by: String,
    pub updated_by: String,
    pub provenance: Provenance,
}

/// An agreement's terms as the initiating unit wrote them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgreementRow {
    /// The agreement document's id.
    pub id: String,
    pub owner: UnitId,
    /// The owner first, then the other parties.
    pub parties: Vec<UnitId>,
    pub terms: Option<Terms>,
    /// The heads a party signs (sorted).
    pub heads: Vec<Hash>,
    /// When the terms were first written (Unix seconds).
    pub created_at: i64,
    /// The persons the owning node recorded: who proposed the terms, who
    /// last changed them.
    pub by: String,
    pub updated_by: String,
    pub provenance: Provenance,
}

pub(crate) fn grid_rows(
    doc: DocId,
    unit: UnitId,
    am: &mut Automerge,
    changes: &ChangeIndex,
) -> Vec<GridRow> {
    let grids = GridsDoc(am).list();
    let persons: Vec<(String, String)> =
        grids.iter().map(|g| GridsDoc(am).persons(&g.id)).collect();
    let am = &*am;
    grids
        .into_iter()
        .zip(persons)
        .map(|(g, (by, updated_by))| {
            let (author, change) = record(am, &g.id)
                .map(|o| latest(am, &o, changes))
                .unwrap_or((None, None));
            GridRow {
                id: global_id(&doc, &g.id),
                unit,
                grid: g,
                by,
                updated_by,
                provenance: Provenance::new(&doc, unit, author, change),
            }
        })
        .collect()
}

pub(crate) fn agreement_row(
    doc: DocId,
    owner: UnitId,
    parties: &[UnitId],
    am: &mut Automerge,
    changes: &ChangeIndex,
) -> AgreementRow {
    let a = AgreementDoc(am);
    let terms = a.terms();
    let heads = a.heads();
    let (by, updated_by) = a.persons();
    let created_at = a.created_at();
    let (author, change) = latest(am, &automerge::ROOT, changes);
    let mut all = vec![owner];
    all.extend(parties.iter().copied().filter(|p| *p != owner));
    AgreementRow {
        id: doc.to_string(),
        owner,
        parties: all,
        terms,
        heads,
        created_at,
        by,
        updated_by,
        provenance: Provenance::new(&doc, owner, author, change),
    }
}

/// Filters of `GET /v1/view/agreements`.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct AgreementQuery {
    /// draft | signed | active | expired | terminated
    pub status: Option<String>,
    /// Agreements this unit is a party to.
    pub party: Option<String>,
    /// Signed or active agreements whose term ends within this many days.
    pub expiring_within_days: Option<u32>,
    /// The unit whose subtree to list (resolved by the API).
    pub scope: Option<String>,
}

/// A party and whether it signed the current terms.
#[derive(Debug, Clone, Serialize)]
pub struct PartyView {
    pub unit: UnitId,
    pub name: Option<String>,
    pub signed: bool,
}

/// An agreement with its derived status.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementView {
    #[serde(flatten)]
    pub row: AgreementRow,
    pub title: Option<String>,
    pub status: AgreementStatus,
    pub status_zh: &'static str,
    pub party_signatures: Vec<PartyView>,
    /// Some party signed earlier terms or parts that have changed since.
    pub changed_after_signing: bool,
    /// Days until the term ends (negative once it has).
    pub ends_in_days: Option<i64>,
}

/// An open need and the open resources of the same category and area.
#[derive(Debug, Clone, Serialize)]
pub struct MatchRow {
    pub need: ItemView,
    pub resources: Vec<ItemView>,
}

fn parse_status(s: &str) -> Result<AgreementStatus, QueryError> {
    Ok(match s {
        "draft" => AgreementStatus::Draft,
        "signed" => AgreementStatus::Signed,
        "active" => AgreementStatus::Active,
        "expired" => AgreementStatus::Expired,
        "terminated" => AgreementStatus::Terminated,
        other => {
            return Err(bad(
                "status",
                format!("`{other}` is not one of draft, signed, active, expired, terminated"),
            ));
        }
    })
}

impl View {
    /// The acts written about agreement `doc`, with the acting unit.
    fn agreement_acts(&self, doc: &str) -> Vec<(UnitId, gongjian_model::Act)> {
        self.acts_on(&format!("{doc}."))
            .into_iter()
            .map(|a| (a.unit, a.act.clone()))
            .collect()
    }

    /// One agreement with its status at `now`, if held.
    pub fn agreement(&self, id: &str, now: i64) -> Option<AgreementView> {
        let doc: DocId = id.parse().ok()?;
        let row = self.agreements.get(&doc)?;
        Some(self.agreement_view(row, now))
    }

    fn agreement_view(&self, row: &AgreementRow, now: i64) -> AgreementView {
        let acts = self.agreement_acts(&row.id);
        let doc: DocId = row.id.parse().unwrap_or(DocId(Hash::ZERO));
        let state = agreement_status(
            &doc,
            &row.parties,
            row.terms.as_ref(),
            &row.heads,
            &acts,
            now,
        );
        AgreementView {
            title: row.terms.as_ref().map(|t| t.title.clone()),
            status: state.status,
            status_zh: state.status.label_zh(),
            party_signatures: row
                .parties
                .iter()
                .map(|u| PartyView {
                    unit: *u,
                    name: self.place(u).map(|p| p.name.clone()),
                    signed: state.signed_by.contains(u),
                })
                .collect(),
            changed_after_signing: state.changed_after_signing,
            ends_in_days: row.terms.as_ref().map(|t| (t.end - now).div_euclid(86_400)),
            row: row.clone(),
        }
    }

    /// Agreements with a party within `scope`, filtered, by end date.
    pub fn agreements(
        &self,
        scope: &UnitId,
        q: &AgreementQuery,
        now: i64,
    ) -> Result<Vec<AgreementView>, QueryError> {
        let status = q.status.as_deref().map(parse_status).transpose()?;
        let party: Option<UnitId> = q
            .party
            .as_deref()
            .map(|s| s.parse().map_err(|e| bad("party", format!("`{s}`: {e}"))))
            .transpose()?;
        if q.expiring_within_days.is_some_and(|d| d > 36_500) {
            return Err(bad("expiring_within_days", "at most 36500"));
        }
        let mut out: Vec<AgreementView> = self
            .agreements
            .values()
            .filter(|r| r.parties.iter().any(|p| self.in_scope(p, scope)))
            .filter(|r| party.is_none_or(|p| r.parties.contains(&p)))
            .map(|r| self.agreement_view(r, now))
            .filter(|v| status.is_none_or(|s| v.status == s))
            .filter(|v| {
                q.expiring_within_days.is_none_or(|d| {
                    matches!(v.status, AgreementStatus::Signed | AgreementStatus::Active)
                        && v.ends_in_days.is_some_and(|e| e <= i64::from(d))
                })
            })
            .collect();
        out.sort_by(|a, b| {
            let end = |v: &AgreementView| v.row.terms.as_ref().map(|t| t.end);
            (end(a), &a.row.id).cmp(&(end(b), &b.row.id))
        });
        Ok(out)
    }

    /// The grids of units within `scope`, as a forest with each grid's
    /// counts summed over its subtree.
    pub fn grids(&self, scope: &UnitId) -> Vec<GridNode> {
        let grids: Vec<(UnitId, Grid)> = self
            .grids
            .values()
            .flatten()
            .filter(|g| self.in_scope(&g.unit, scope))
            .map(|g| (g.unit, g.grid.clone()))
            .collect();
        grid_tree(&grids, |u, p| self.in_scope(u, p))
    }

    /// One grid row by global id.
    pub fn grid(&self, id: &str) -> Option<&GridRow> {
        let (doc, _) = crate::split_global_id(id)?;
        self.grids.get(&doc)?.iter().find(|g| g.id == id)
    }

    /// Where a record is, for matching: its area, or else the community
    /// (or street, or unit) that owns it.
    fn area_key(&self, r: &ItemRow) -> String {
        if !r.area.trim().is_empty() {
            return format!("area:{}", r.area.trim());
        }
        let place = self.place(&r.unit);
        let at = place
            .and_then(|p| p.community.or(p.street))
            .unwrap_or(r.unit);
        format!("unit:{at}")
    }

    /// Open needs within `scope` beside the open resources of the same
    /// category and area (needs with no such resource are left out).
    pub fn matches(&self, scope: &UnitId) -> Vec<MatchRow> {
        let mut resources: BTreeMap<(String, String), Vec<&ItemRow>> = BTreeMap::new();
        for r in self.items.values() {
            if r.list == "resource"
                && r.status == "open"
                && !r.category.is_empty()
                && self.in_scope(&r.unit, scope)
            {
                resources
                    .entry((r.category.clone(), self.area_key(r)))
                    .or_default()
                    .push(r);
            }
        }
        let mut out: Vec<MatchRow> = self
            .items
            .values()
            .filter(|r| r.list == "need" && r.status == "open" && self.in_scope(&r.unit, scope))
            .filter_map(|n| {
                let found = resources.get(&(n.category.clone(), self.area_key(n)))?;
                Some(MatchRow {
                    need: self.view_of(n),
                    resources: found.iter().map(|r| self.view_of(r)).collect(),
                })
            })
            .filter(|m| !m.resources.is_empty())
            .collect();
        out.sort_by(|a, b| {
            (b.need.row.created_at, &a.need.row.id).cmp(&(a.need.row.created_at, &b.need.row.id))
        });
        out
    }
}
