//! API for grids, agreements, whistles and escalation, and the view lists
//! that join across units (matches, agreements with their signatures, the
//! grid tree). Every write is signed by this node in a document of its own
//! unit; what another unit does about a record goes in its own acts.

use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse as _, Response};
use gongjian_engine::EngineError;
use gongjian_identity::{DocId, DocType, UnitId, UnitKind};
use gongjian_model::{
    Act, ActKind, ActsDoc, AgreementDoc, Grid, GridCounts, GridLevel, GridRef, GridsDoc,
    ItemFields, ListDoc, ListKind, ProblemLevel, Target, Terms, agreement_parts_digest,
};
use gongjian_view::{AgreementQuery, global_id, split_global_id};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::api::{
    Api, ApiError, ApiResult, ScopeQuery, add_record, find_item, item_json, list_response,
    list_scope, random_id, write_act,
};
use crate::api_export;
use crate::node::{now, own_doc};

type Created = Result<(StatusCode, Json<Value>), ApiError>;

fn to_json(v: impl serde::Serialize) -> Result<Json<Value>, ApiError> {
    serde_json::to_value(v)
        .map(Json)
        .map_err(|e| ApiError::internal(e.to_string()))
}

fn unit_param(what: &str, s: &str) -> Result<UnitId, ApiError> {
    s.parse()
        .map_err(|e| ApiError::bad(format!("{what}: `{s}` is not a unit id: {e}")))
}

// ---- grids -------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewGrid {
    #[serde(default)]
    id: Option<String>,
    level: String,
    name: String,
    /// Global id of the parent grid (required below a zone).
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    leader: String,
    #[serde(default)]
    party_branch: String,
    #[serde(default)]
    staff: Vec<String>,
    #[serde(default)]
    counts: Option<GridCounts>,
}

/// `POST /v1/grids`: adds (or, with an existing `id`, replaces) a grid of
/// this unit.
pub(crate) async fn add_grid(
    State(api): State<Api>,
    body: Result<Json<NewGrid>, JsonRejection>,
) -> Created {
    let Json(b) = body?;
    let level: GridLevel = b.level.parse().map_err(|_| {
        ApiError::bad(format!(
            "level: `{}` is not one of zone, residential, micro, building",
            b.level
        ))
    })?;
    let parent = match &b.parent {
        None => None,
        Some(p) => {
            let view = api.view.read().map_err(|_| ApiError::lock())?;
            let row = view
                .grid(p)
                .ok_or_else(|| ApiError::bad(format!("parent: no grid {p} in this node's view")))?;
            Some(GridRef {
                unit: row.unit,
                id: row.grid.id.clone(),
            })
        }
    };
    let grid = Grid {
        id: b.id.unwrap_or_else(random_id),
        level,
        name: b.name,
        parent,
        leader: b.leader,
        party_branch: b.party_branch,
        staff: b.staff,
        counts: b.counts.unwrap_or_default(),
    };
    let unit = api.me.unit;
    let gid = grid.id.clone();
    let by = crate::api_console::person_by();
    let doc = api
        .backend
        .write(move |r| {
            let res = (|| {
                let doc = own_doc(r, &unit, DocType::Grids)?;
                let t = now();
                r.local_change(&doc, t, |am| GridsDoc(am).put_by(&grid, &by, t as i64))?;
                Ok::<DocId, EngineError>(doc)
            })();
            let docs = res.as_ref().map(|d| vec![*d]).unwrap_or_default();
            (res, docs)
        })
        .await??;
    let id = global_id(&doc, &gid);
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let row = view
        .grid(&id)
        .ok_or_else(|| ApiError::internal(format!("{id} written but not in the view")))?;
    Ok((StatusCode::CREATED, to_json(row)?))
}

/// `GET /v1/view/grids`: the grid tree of the scope, counts summed up.
pub(crate) async fn view_grids(
    State(api): State<Api>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (format, q): (_, ScopeQuery) = api_export::query(raw.as_deref())?;
    let (scope, grids) = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = list_scope(&api, &view, q.scope.as_deref())?;
        (scope, view.grids(&scope))
    };
    if format.is_none() {
        // The whole district's tree is large (1.2 MB at ten times Gulou):
        // written straight from the rows, with no JSON value tree between.
        #[derive(serde::Serialize)]
        struct Body<'a, S: serde::Serialize> {
            grids: &'a [gongjian_model::GridNode],
            scope: S,
        }
        let bytes = serde_json::to_vec(&Body {
            grids: &grids,
            scope,
        })
        .map_err(|e| ApiError::internal(e.to_string()))?;
        return Ok((
            [(
                axum::http::header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("application/json"),
            )],
            bytes,
        )
            .into_response());
    }
    let body = json!({"scope": scope, "grids": grids});
    list_response(format, "grids", body, |b| {
        api_export::grid_rows(b["grids"].as_array().map(Vec::as_slice).unwrap_or(&[]))
    })
}

// ---- problems: escalation and handling ----------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Escalate {
    /// zone | community | street | district
    to: String,
    /// The unit that handles it at that level (default: the owner's own
    /// community, street or district).
    #[serde(default)]
    handler: Option<String>,
}

/// `POST /v1/items/{id}/escalate`: the owner moves a problem up a level.
pub(crate) async fn escalate(
    State(api): State<Api>,
    crate::api::Id(id): crate::api::Id,
    body: Result<Json<Escalate>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let to: ProblemLevel = b.to.parse().map_err(|_| {
        ApiError::bad(format!(
            "to: `{}` is not one of zone, community, street, district",
            b.to
        ))
    })?;
    let item = find_item(&api, &id)?;
    if item.list != "problem" {
        return Err(ApiError::bad(format!(
            "{id} is a {}: only problems escalate",
            item.list
        )));
    }
    if item.unit != api.me.unit {
        return Err(ApiError::forbidden(format!(
            "{id} belongs to unit {}: only its owner escalates it",
            item.unit
        )));
    }
    let handler = match (&b.handler, to.handler_kind()) {
        (Some(_), None) => {
            return Err(ApiError::bad(format!(
                "handler: a problem at the {} level stays in the owner's own grids",
                to.as_str()
            )));
        }
        (Some(h), Some(kind)) => {
            let h = unit_param("handler", h)?;
            let view = api.view.read().map_err(|_| ApiError::lock())?;
            let above = h != api.me.unit && view.in_scope(&api.me.unit, &h);
            if view.place(&h).is_none_or(|p| p.kind != kind) || !above {
                return Err(ApiError::bad(format!(
                    "handler: {h} is not a {} above this unit",
                    kind.as_str()
                )));
            }
            Some(h)
        }
        (None, None) => None,
        (None, Some(kind)) => {
            let view = api.view.read().map_err(|_| ApiError::lock())?;
            let mut at = Some(api.me.unit);
            let mut found = None;
            for _ in 0..8 {
                let Some(p) = at.and_then(|u| view.place(&u)) else {
                    break;
                };
                if p.kind == kind {
                    found = Some(p.unit);
                    break;
                }
                at = p.parent;
            }
            Some(found.ok_or_else(|| {
                ApiError::bad(format!(
                    "handler: this unit has no {} above it; name one",
                    kind.as_str()
                ))
            })?)
        }
    };
    let (doc, record) = split_global_id(&id).ok_or_else(|| ApiError::bad("id"))?;
    let record = record.to_owned();
    let by = crate::api_console::person_by();
    api.backend
        .write(move |r| {
            let t = now();
            let res = r.local_change(&doc, t, |am| {
                ListDoc::open(am, DocType::Problems)?
                    .by(&by)?
                    .escalate(&record, to, handler, t as i64)
            });
            (res.map(|_| ()), vec![doc])
        })
        .await??;
    item_json(&api, &id)
}

/// A status set by the unit a problem was escalated to: a handling act in
/// its own document (the owner's document stays the owner's).
pub(crate) async fn handle_problem(
    api: &Api,
    id: &str,
    item: &gongjian_view::ItemRow,
    status: gongjian_model::ItemStatus,
) -> ApiResult {
    let (doc, record) = split_global_id(id).ok_or_else(|| ApiError::bad("id"))?;
    let act = Act {
        note: status.as_str().to_owned(),
        resolved: matches!(
            status,
            gongjian_model::ItemStatus::Resolved | gongjian_model::ItemStatus::Closed
        ),
        ..Act::new(
            &random_id(),
            ActKind::Handling,
            Target {
                unit: item.unit,
                doc,
                record: record.to_owned(),
            },
            now() as i64,
        )
    };
    write_act(api, act).await?;
    item_json(api, id)
}

// ---- whistles -----------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewWhistle {
    title: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    grid: Option<String>,
    /// district | street | community | resident; empty or absent: all.
    #[serde(default)]
    levels: Vec<String>,
}

/// `POST /v1/whistles`: blows a whistle (吹哨), calling levels to respond.
pub(crate) async fn add_whistle(
    State(api): State<Api>,
    body: Result<Json<NewWhistle>, JsonRejection>,
) -> Created {
    let Json(b) = body?;
    let levels = b
        .levels
        .iter()
        .map(|l| {
            l.parse::<UnitKind>().map_err(|_| {
                ApiError::bad(format!(
                    "levels: `{l}` is not one of district, street, community, resident"
                ))
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let fields = ItemFields {
        title: Some(b.title),
        category: b.category,
        description: b.description,
        area: b.area,
        grid: b.grid,
        urgent: None,
        levels: Some(levels),
    };
    let id = add_record(&api, ListKind::Whistle, fields).await?;
    Ok((StatusCode::CREATED, item_json(&api, &id)?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Respond {
    #[serde(default)]
    note: String,
}

/// `POST /v1/whistles/{id}/respond`: a called unit reports (报到), in its
/// own acts document.
pub(crate) async fn respond(
    State(api): State<Api>,
    crate::api::Id(id): crate::api::Id,
    body: Result<Json<Respond>, JsonRejection>,
) -> Created {
    let Json(b) = body?;
    let item = find_item(&api, &id)?;
    if item.list != "whistle" {
        return Err(ApiError::bad(format!(
            "{id} is a {}: only whistles are responded to",
            item.list
        )));
    }
    if item.unit == api.me.unit {
        return Err(ApiError::forbidden(
            "a unit does not respond to its own whistle",
        ));
    }
    let me = api.me.kind.as_str();
    if !item.levels.is_empty() && !item.levels.contains(&me) {
        return Err(ApiError::forbidden(format!(
            "this whistle calls {}; this node is a {me}",
            item.levels.join(", ")
        )));
    }
    let (doc, record) = split_global_id(&id).ok_or_else(|| ApiError::bad("id"))?;
    let act = Act {
        note: b.note,
        ..Act::new(
            &random_id(),
            ActKind::Response,
            Target {
                unit: item.unit,
                doc,
                record: record.to_owned(),
            },
            now() as i64,
        )
    };
    write_act(&api, act).await?;
    Ok((StatusCode::CREATED, item_json(&api, &id)?))
}

// ---- agreements ---------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewAgreement {
    title: String,
    /// The other parties' unit ids.
    parties: Vec<String>,
    /// Unix seconds, inclusive.
    start: i64,
    end: i64,
    #[serde(default)]
    services: Vec<String>,
    #[serde(default)]
    contact: String,
}

fn agreement_json(api: &Api, id: &str) -> ApiResult {
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let a = view
        .agreement(id, now() as i64)
        .ok_or_else(|| ApiError::not_found(format!("no agreement {id} in this node's view")))?;
    to_json(a)
}

/// `POST /v1/agreements`: this unit proposes a co-building agreement.
pub(crate) async fn add_agreement(
    State(api): State<Api>,
    body: Result<Json<NewAgreement>, JsonRejection>,
) -> Created {
    let Json(b) = body?;
    let parties = b
        .parties
        .iter()
        .map(|p| unit_param("parties", p))
        .collect::<Result<Vec<_>, _>>()?;
    if gongjian_model::agreement_parties(api.me.unit, &parties).is_none() {
        return Err(ApiError::bad(
            "parties: name at least one other unit, each once, not this unit",
        ));
    }
    {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        if let Some(p) = parties.iter().find(|p| view.place(p).is_none()) {
            return Err(ApiError::bad(format!(
                "parties: {p} is not a unit this node knows"
            )));
        }
    }
    let terms = Terms {
        title: b.title,
        start: b.start,
        end: b.end,
        services: b.services,
        contact: b.contact,
    };
    // Refused before the document exists: a bad request stores nothing.
    terms.check().map_err(|e| ApiError::bad(e.to_string()))?;
    let by = crate::api_console::person_by();
    let doc = api
        .backend
        .write(move |r| {
            let res = (|| {
                let t = now();
                let doc = r.create_document_with_parties(DocType::Agreement, parties, t)?;
                r.local_change(&doc, t, |am| {
                    AgreementDoc(am).set_terms_by(&terms, &by, t as i64)
                })?;
                Ok::<DocId, EngineError>(doc)
            })();
            let docs = res.as_ref().map(|d| vec![*d]).unwrap_or_default();
            (res, docs)
        })
        .await??;
    Ok((StatusCode::CREATED, agreement_json(&api, &doc.to_string())?))
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SignBody {
    #[serde(default)]
    note: String,
    /// This party's own commitments, recorded (as a part) before signing.
    #[serde(default)]
    services: Option<Vec<String>>,
    #[serde(default)]
    contact: Option<String>,
}

/// `POST /v1/agreements/{id}/sign`: a party signs the terms and parts as
/// this node holds them, in its own acts document.
pub(crate) async fn sign_agreement(
    State(api): State<Api>,
    crate::api::Id(id): crate::api::Id,
    body: Result<Json<SignBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let doc: DocId = id
        .parse()
        .map_err(|_| ApiError::bad(format!("`{id}` is not an agreement id (64 hex digits)")))?;
    let (owner, parties) = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let a = view
            .agreement(&id, now() as i64)
            .ok_or_else(|| ApiError::not_found(format!("no agreement {id} in this node's view")))?;
        (a.row.owner, a.row.parties.clone())
    };
    if !parties.contains(&api.me.unit) {
        return Err(ApiError::forbidden(format!(
            "unit {} is not a party to agreement {id}",
            api.me.unit
        )));
    }
    let by = crate::api_console::person_by();
    let target = Target {
        unit: owner,
        doc,
        record: String::new(),
    };
    if b.services.is_some() || b.contact.is_some() {
        let part = Act {
            services: b.services.unwrap_or_default(),
            contact: b.contact.unwrap_or_default(),
            ..Act::new(&random_id(), ActKind::Part, target.clone(), now() as i64)
        };
        write_act(&api, part).await?;
    }
    let view = api.view.clone();
    let unit = api.me.unit;
    api.backend
        .write(move |r| {
            let res = (|| {
                let heads = {
                    let mut am = r.load(&doc)?;
                    AgreementDoc(&mut am).heads()
                };
                let acts: Vec<(UnitId, Act)> = match view.read() {
                    Ok(v) => v
                        .acts_on(&format!("{doc}."))
                        .into_iter()
                        .map(|a| (a.unit, a.act.clone()))
                        .collect(),
                    Err(_) => return Ok(None),
                };
                let parts = agreement_parts_digest(&doc, &parties, &acts);
                let acts_doc = own_doc(r, &unit, DocType::Acts)?;
                let t = now();
                let act = Act {
                    note: b.note,
                    heads,
                    parts: Some(parts),
                    by,
                    ..Act::new(&random_id(), ActKind::Sign, target, t as i64)
                };
                r.local_change(&acts_doc, t, |am| {
                    ActsDoc { doc: am, unit }.record(&act, t as i64)
                })?;
                Ok::<Option<DocId>, EngineError>(Some(acts_doc))
            })();
            let docs = res.as_ref().ok().copied().flatten().into_iter().collect();
            (res, docs)
        })
        .await??
        .ok_or_else(ApiError::lock)?;
    agreement_json(&api, &id)
}

/// `GET /v1/view/agreements`: by status, party, or ending soon.
pub(crate) async fn view_agreements(
    State(api): State<Api>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (format, q): (_, AgreementQuery) = api_export::query(raw.as_deref())?;
    let body = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = list_scope(&api, &view, q.scope.as_deref())?;
        let list = view.agreements(&scope, &q, now() as i64)?;
        json!({"scope": scope, "agreements": list})
    };
    list_response(format, "agreements", body, |b| {
        b["agreements"].as_array().cloned().unwrap_or_default()
    })
}

/// `GET /v1/view/agreements/{id}`.
pub(crate) async fn view_agreement(
    State(api): State<Api>,
    crate::api::Id(id): crate::api::Id,
) -> ApiResult {
    if id.parse::<DocId>().is_err() {
        return Err(ApiError::bad(format!(
            "`{id}` is not an agreement id (64 hex digits)"
        )));
    }
    agreement_json(&api, &id)
}

/// `GET /v1/view/matches`: open needs beside open resources of the same
/// category and area.
pub(crate) async fn view_matches(
    State(api): State<Api>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let (format, q): (_, crate::api::ScopeQuery) = api_export::query(raw.as_deref())?;
    let body = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = list_scope(&api, &view, q.scope.as_deref())?;
        json!({"scope": scope, "matches": view.matches(&scope)})
    };
    list_response(format, "matches", body, |b| {
        b["matches"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|m| {
                json!({
                    "need": m["need"]["title"], "need_id": m["need"]["id"],
                    "need_unit": m["need"]["unit_name"], "category": m["need"]["category"],
                    "area": m["need"]["area"], "resources": m["resources"],
                })
            })
            .collect()
    })
}
