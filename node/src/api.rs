//! The HTTP API (`/v1`, JSON, bearer token from `DIR/api.token`): the node,
//! writes signed by the node and acknowledged once durable, and the merged
//! view. `/health` and `/ready` need no token.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use gongjian_engine::EngineError;
use gongjian_identity::{DocId, DocType, PublicKey, UnitId, UnitKind};
use gongjian_model::{Act, ActKind, ActsDoc, ItemFields, ItemStatus, ListDoc, ListKind, Target};
use gongjian_view::{ItemQuery, StatsBy, View, split_global_id};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::backend::Backend;
use crate::node::{now, own_doc};
use crate::{api_bundle, api_civic, api_console, api_export};
use gongjian_engine::MAX_BUNDLE_BYTES;

/// Request bodies larger than this get 413.
pub const MAX_BODY: usize = 1 << 20;
/// A peer-state file sent to `/v1/bundles/export`.
pub const MAX_STATE_BYTES: usize = 256 << 20;

/// Who this node is, for `/v1/node`.
#[derive(Debug, Clone)]
pub struct Me {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub name: String,
    pub key: PublicKey,
}

#[derive(Clone)]
pub struct Api {
    pub backend: Backend,
    /// The data dir (scratch space for bundle imports).
    pub data_dir: Arc<std::path::PathBuf>,
    pub view: Arc<RwLock<View>>,
    /// False on a node configured without the merged view (`view = false`):
    /// every endpoint that reads it answers 503 `no_view` (`no_view`).
    pub keeps_view: bool,
    pub token: Arc<String>,
    pub me: Arc<Me>,
    pub ready: Arc<AtomicBool>,
    /// The node's users, sessions and audit log (`DIR/accounts`).
    pub accounts: Arc<crate::accounts::Accounts>,
}

/// An error as the API returns it: `{"error": {"code", "message"}}`.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(
        status: StatusCode,
        code: &'static str,
        message: impl Into<String>,
    ) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
    pub(crate) fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }
    pub(crate) fn forbidden(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
    }
    pub(crate) fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }
    pub(crate) fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }
    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }
    pub(crate) fn message(&self) -> &str {
        &self.message
    }
    pub(crate) fn lock() -> ApiError {
        ApiError::internal("a lock was poisoned by an earlier panic; restart the node")
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response()
    }
}

impl From<JsonRejection> for ApiError {
    fn from(r: JsonRejection) -> ApiError {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                format!("request body over {MAX_BODY} bytes"),
            );
        }
        if r.status() == StatusCode::UNSUPPORTED_MEDIA_TYPE {
            return ApiError::bad("send the body as JSON with Content-Type: application/json");
        }
        ApiError::bad(format!("body: {}", r.body_text()))
    }
}

impl From<QueryRejection> for ApiError {
    fn from(r: QueryRejection) -> ApiError {
        ApiError::bad(format!("query: {}", r.body_text()))
    }
}

impl From<gongjian_view::QueryError> for ApiError {
    fn from(e: gongjian_view::QueryError) -> ApiError {
        ApiError::bad(e.to_string())
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> ApiError {
        match &e {
            EngineError::NotWriter(_) | EngineError::LocalRejected(_) => {
                ApiError::forbidden(e.to_string())
            }
            EngineError::NotAdmitted(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "not_admitted",
                format!("{e}: renew this node's certificate"),
            ),
            EngineError::UnknownDocument(_) => ApiError::not_found(e.to_string()),
            // Waits for records sync (or a restore): try again later.
            EngineError::GenesisMissing(_) => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "genesis_missing",
                e.to_string(),
            ),
            // A local edit that would make an invalid change (e.g. over the
            // change size limit): the input was too big.
            EngineError::LocalInvalid(_) => ApiError::bad(format!("{e} (shorten the request)")),
            EngineError::Need(_)
            | EngineError::Grid(_)
            | EngineError::Act(_)
            | EngineError::Agreement(_)
            | EngineError::Parties(_) => ApiError::bad(e.to_string()),
            _ => ApiError::internal(e.to_string()),
        }
    }
}

impl From<gongjian_net::NetError> for ApiError {
    fn from(e: gongjian_net::NetError) -> ApiError {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "stopping", e.to_string())
    }
}

pub(crate) type ApiResult = Result<Json<Value>, ApiError>;

pub fn router(api: Api) -> Router {
    let v1 = Router::new()
        .route("/v1/node", get(node_info))
        .route("/v1/status", get(status))
        .route("/v1/items", post(add_item))
        .route("/v1/items/{id}/status", post(set_status))
        .route("/v1/items/{id}/claim", post(claim))
        .route("/v1/items/{id}/escalate", post(api_civic::escalate))
        .route("/v1/grids", post(api_civic::add_grid))
        .route("/v1/whistles", post(api_civic::add_whistle))
        .route("/v1/whistles/{id}/respond", post(api_civic::respond))
        .route("/v1/agreements", post(api_civic::add_agreement))
        .route("/v1/agreements/{id}/sign", post(api_civic::sign_agreement))
        .route("/v1/view/matches", get(api_civic::view_matches))
        .route("/v1/view/agreements", get(api_civic::view_agreements))
        .route("/v1/view/agreements/{id}", get(api_civic::view_agreement))
        .route("/v1/view/grids", get(api_civic::view_grids))
        .route("/v1/bundles/state", get(api_bundle::state))
        .route(
            "/v1/bundles/export",
            post(api_bundle::export).layer(DefaultBodyLimit::max(MAX_STATE_BYTES)),
        )
        .route(
            "/v1/bundles/import",
            post(api_bundle::import).layer(DefaultBodyLimit::max(MAX_BUNDLE_BYTES as usize)),
        )
        .route("/v1/view/items", get(view_items))
        .route("/v1/view/items/{id}", get(view_item))
        .route("/v1/view/stats", get(view_stats))
        .route("/v1/view/units", get(view_units))
        .route("/v1/view/digest", get(view_digest))
        .route("/v1/docs", get(docs))
        .route("/v1/docs/{id}", get(doc))
        .route("/v1/openapi.json", get(openapi))
        .route("/v1/backup", post(backup))
        .route("/v1/view/report", get(api_console::report))
        .route("/v1/session", get(api_console::session))
        .route("/v1/password", post(api_console::password))
        .route(
            "/v1/users",
            get(api_console::users).post(api_console::add_user),
        )
        .route(
            "/v1/users/{name}",
            axum::routing::patch(api_console::update_user).delete(api_console::remove_user),
        )
        .route("/v1/audit", get(api_console::audit))
        .fallback(|| async { ApiError::not_found("no such endpoint") })
        .method_not_allowed_fallback(|| async {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this endpoint does not take that method (see /v1/openapi.json)",
            )
        })
        .route_layer(middleware::from_fn_with_state(api.clone(), no_view))
        .route_layer(middleware::from_fn_with_state(
            api.clone(),
            api_console::auth,
        ));
    Router::new()
        .route("/", get(api_console::root))
        .route("/console/", get(api_console::index))
        .route("/console/app.js", get(api_console::app_js))
        .route("/console/app.css", get(api_console::app_css))
        .route("/v1/login", post(api_console::login))
        .route("/v1/logout", post(api_console::logout))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(crate::metrics::metrics))
        .merge(v1)
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .with_state(api)
}

/// Endpoints that need no merged view: a node without one (a relay hub)
/// answers only these.
const WITHOUT_VIEW: [&str; 10] = [
    "/v1/node",
    "/v1/status",
    "/v1/docs",
    "/v1/openapi.json",
    "/v1/backup",
    "/v1/bundles/",
    "/v1/session",
    "/v1/password",
    "/v1/users",
    "/v1/audit",
];

/// On a node that keeps no merged view, every endpoint that reads it (the
/// view's queries, and the writes that name records through it): 503,
/// saying why.
async fn no_view(
    State(api): State<Api>,
    req: axum::extract::Request,
    next: middleware::Next,
) -> axum::response::Response {
    let path = req.uri().path();
    if !api.keeps_view && !WITHOUT_VIEW.iter().any(|p| path.starts_with(p)) {
        return ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_view",
            "this node keeps no merged view (its config has `view = false`, a hub that stores and relays): query a node that keeps one",
        )
        .into_response();
    }
    next.run(req).await
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries this node's API token.
pub(crate) fn authorized(api: &Api, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| same(t.trim().as_bytes(), api.token.as_bytes()))
}

/// `/health`: up, and which unit (so a command can check it reached this
/// node before it sends the token).
/// A path id, whose rejection (bad percent-encoding, say) is a JSON 400
/// like every other error.
pub(crate) struct Id(pub(crate) String);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for Id {
    type Rejection = ApiError;
    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        Path::<String>::from_request_parts(parts, state)
            .await
            .map(|Path(s)| Id(s))
            .map_err(|e| ApiError::bad(format!("path: {e}")))
    }
}

async fn health(State(api): State<Api>) -> Json<Value> {
    Json(json!({"status": "ok", "unit": api.me.unit}))
}

async fn ready(State(api): State<Api>) -> Response {
    if api.ready.load(Ordering::Acquire) {
        Json(json!({"ready": true})).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"ready": false})),
        )
            .into_response()
    }
}

async fn node_info(State(api): State<Api>) -> ApiResult {
    let (running, st) = match api.backend.net() {
        Some((_, st)) => (true, st),
        None => (false, gongjian_net::NetStatus::default()),
    };
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let peers: Vec<Value> = st
        .peers
        .iter()
        .map(|(id, p)| {
            json!({
                "peer_id": id.to_string(),
                "unit": p.unit,
                "unit_name": p.unit.and_then(|u| view.place(&u)).map(|pl| pl.name.clone()),
                "connected": p.connected,
                "relayed": p.relayed,
                "direct": p.connected && !p.relayed,
                "address": p.address.as_ref().map(ToString::to_string),
                "last_seen": p.last_seen,
                "last_synced": p.last_synced,
                "pending_docs": p.pending_docs,
                "misbehaviour": p.misbehaviour,
                "last_misbehaviour": p.last_misbehaviour,
            })
        })
        .collect();
    Ok(Json(json!({
        "unit": api.me.unit,
        "kind": api.me.kind.to_string(),
        "name": api.me.name,
        "public_key": api.me.key.to_string(),
        "peer_id": api.me.key.peer_id().to_string(),
        "running": running,
        "listen": st.listen.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "peers": peers,
    })))
}

/// Days before expiry from which the certificate is reported as expiring.
pub const CERT_WARN_DAYS: u64 = 30;

/// This node's certificate: valid until when, or why not.
pub fn certificate(trust: &gongjian_model::Trust, key: &PublicKey, now: u64) -> Value {
    match trust.admit_until(key, now) {
        Ok((_, until)) => {
            let days_left = until.saturating_sub(now) / 86_400;
            json!({
                "state": if days_left < CERT_WARN_DAYS { "expiring" } else { "valid" },
                "expires_at": until,
                "days_left": days_left,
            })
        }
        Err(e) => json!({"state": "invalid", "why": e.to_string()}),
    }
}

/// `GET /v1/status`: what `gongjian status` prints.
async fn status(State(api): State<Api>) -> ApiResult {
    let key = api.me.key;
    let (store, cert) = api
        .backend
        .read(move |r| (r.store().clone(), certificate(r.trust(), &key, now())))
        .await?;
    // Counting walks every key: on a blocking thread of its own, not on
    // the sync thread (RocksDB reads are safe from any thread).
    let (s, epoch) = tokio::task::spawn_blocking(move || {
        store.stats().and_then(|s| store.epoch().map(|e| (s, e)))
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let (items, acts) = api.view.read().map_err(|_| ApiError::lock())?.len();
    let net = api.backend.net().map(|(_, st)| {
        json!({
            "peers": st.peers.len(),
            "connected": st.peers.values().filter(|p| p.connected).count(),
            "misbehaviour": st.misbehaviour,
            "unadmitted_closed": st.unadmitted_closed,
            "scrub": st.scrub,
            "settle": st.settle,
            "view_lag": st.view_lag,
        })
    });
    Ok(Json(json!({
        "unit": api.me.unit,
        "name": api.me.name,
        "kind": api.me.kind.to_string(),
        "running": net.is_some(),
        "epoch": epoch,
        "documents": s.docs,
        "changes": s.changes,
        "records": s.records,
        "quarantined": s.quarantine,
        // Families RocksDB found damaged (counts stop there): stop the node
        // and run `gongjian verify --repair`.
        "damaged": s.damaged,
        "certificate": cert,
        "view": {"kept": api.keeps_view, "items": items, "acts": acts},
        "network": net,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BackupBody {
    /// An absolute path that does not exist yet, on the node's machine.
    out: String,
}

/// `POST /v1/backup`: a consistent RocksDB checkpoint of the live store
/// (hard links where it can), taken without stopping the node.
async fn backup(
    State(api): State<Api>,
    body: Result<Json<BackupBody>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let out = std::path::PathBuf::from(&b.out);
    if !out.is_absolute() {
        return Err(ApiError::bad(format!(
            "out: `{}` is not an absolute path",
            b.out
        )));
    }
    if out.exists() {
        return Err(ApiError::bad(format!("out: {} already exists", b.out)));
    }
    let dest = out.clone();
    let epoch = api
        .backend
        .read(move |r| {
            r.store().checkpoint(&dest)?;
            r.store().epoch()
        })
        .await?
        .map_err(|e| ApiError::bad(format!("out: {}: {e}", b.out)))?;
    Ok(Json(
        json!({"backup": out.display().to_string(), "epoch": epoch}),
    ))
}

pub(crate) fn random_id() -> String {
    let mut raw = [0u8; 16];
    rand::fill(&mut raw);
    raw.iter().map(|b| format!("{b:02x}")).collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewItem {
    list: String,
    title: String,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    area: Option<String>,
    #[serde(default)]
    grid: Option<String>,
    #[serde(default)]
    urgent: Option<bool>,
}

pub(crate) fn item_json(api: &Api, id: &str) -> ApiResult {
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let item = view
        .item_view_held(id)
        .ok_or_else(|| ApiError::internal(format!("{id} written but not in the view")))?;
    Ok(Json(
        serde_json::to_value(item).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}

async fn add_item(
    State(api): State<Api>,
    body: Result<Json<NewItem>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let kind: ListKind = b
        .list
        .parse()
        .map_err(|e: gongjian_model::ItemError| ApiError::bad(format!("list: {e}")))?;
    if kind == ListKind::Whistle {
        return Err(ApiError::bad(
            "list: whistles are blown with POST /v1/whistles",
        ));
    }
    let fields = ItemFields {
        title: Some(b.title),
        category: b.category,
        description: b.description,
        area: b.area,
        grid: b.grid,
        urgent: b.urgent,
        levels: None,
    };
    let id = add_record(&api, kind, fields).await?;
    Ok((StatusCode::CREATED, item_json(&api, &id)?))
}

/// Adds a record to this unit's list of `kind` (its document created on
/// first use); returns the record's global id once durable.
pub(crate) async fn add_record(
    api: &Api,
    kind: ListKind,
    fields: ItemFields,
) -> Result<String, ApiError> {
    let unit = api.me.unit;
    let record = random_id();
    let rec = record.clone();
    let by = api_console::person_by();
    // Checked on a scratch document first: a refused record must not
    // leave a new, empty document of this unit behind.
    ListDoc::new(&mut automerge::Automerge::new(), kind)
        .by(&by)
        .map_err(|e| ApiError::bad(e.to_string()))?
        .add(&record, &fields, now() as i64)
        .map_err(|e| ApiError::bad(e.to_string()))?;
    let doc = api
        .backend
        .write(move |r| {
            let res = (|| {
                let doc = own_doc(r, &unit, kind.doc_type())?;
                let t = now();
                r.local_change(&doc, t, |am| {
                    ListDoc::new(am, kind).by(&by)?.add(&rec, &fields, t as i64)
                })?;
                Ok::<DocId, EngineError>(doc)
            })();
            let docs = res.as_ref().map(|d| vec![*d]).unwrap_or_default();
            (res, docs)
        })
        .await??;
    Ok(gongjian_view::global_id(&doc, &record))
}

/// Writes one act of this unit about another unit's record, in this
/// unit's own acts document (created on first use).
pub(crate) async fn write_act(api: &Api, mut act: Act) -> Result<(), ApiError> {
    let unit = api.me.unit;
    act.by = api_console::person_by();
    // Checked on a scratch document first (see `add_record`).
    ActsDoc {
        doc: &mut automerge::Automerge::new(),
        unit,
    }
    .record(&act, now() as i64)
    .map_err(|e| ApiError::bad(e.to_string()))?;
    api.backend
        .write(move |r| {
            let res = (|| {
                let acts = own_doc(r, &unit, DocType::Acts)?;
                let t = now();
                r.local_change(&acts, t, |am| {
                    ActsDoc { doc: am, unit }.record(&act, t as i64)
                })?;
                Ok::<DocId, EngineError>(acts)
            })();
            let docs = res.as_ref().map(|d| vec![*d]).unwrap_or_default();
            (res.map(|_| ()), docs)
        })
        .await??;
    Ok(())
}

/// The item named by a global id, as the view holds it.
pub(crate) fn find_item(api: &Api, id: &str) -> Result<gongjian_view::ItemRow, ApiError> {
    if split_global_id(id).is_none() {
        return Err(ApiError::bad(format!(
            "`{id}` is not an item id (document id, `.`, record id)"
        )));
    }
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    view.item_view_held(id)
        .map(|v| v.row)
        .ok_or_else(|| ApiError::not_found(format!("no item {id} in this node's view")))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewStatus {
    status: String,
}

async fn set_status(
    State(api): State<Api>,
    Id(id): Id,
    body: Result<Json<NewStatus>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let status: ItemStatus = b
        .status
        .parse()
        .map_err(|e: gongjian_model::ItemError| ApiError::bad(format!("status: {e}")))?;
    let item = find_item(&api, &id)?;
    if item.unit != api.me.unit {
        let handles = {
            let view = api.view.read().map_err(|_| ApiError::lock())?;
            view.may_handle(&item, &api.me.unit)
        };
        if handles {
            return crate::api_civic::handle_problem(&api, &id, &item, status).await;
        }
        return Err(ApiError::forbidden(format!(
            "{id} belongs to unit {}: only the owning unit sets the status of its records, or the unit a problem was escalated to (recorded in its own document)",
            item.unit
        )));
    }
    let (doc, _) = split_global_id(&id).ok_or_else(|| ApiError::bad("id"))?;
    let record = item.record.clone();
    let by = api_console::person_by();
    api.backend
        .write(move |r| {
            let t = now();
            let res = (|| {
                let doc_type = r
                    .trust()
                    .genesis(&doc)
                    .map(|g| g.doc_type)
                    .ok_or_else(|| EngineError::UnknownDocument(doc.to_string()))?;
                r.local_change(&doc, t, |am| {
                    ListDoc::open(am, doc_type)?
                        .by(&by)?
                        .set_status(&record, status, t as i64)
                })
            })();
            (res.map(|_| ()), vec![doc])
        })
        .await??;
    item_json(&api, &id)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct NewClaim {
    #[serde(default)]
    note: String,
}

async fn claim(
    State(api): State<Api>,
    Id(id): Id,
    body: Result<Json<NewClaim>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let item = find_item(&api, &id)?;
    if !matches!(item.list, "project" | "wish") {
        return Err(ApiError::bad(format!(
            "{id} is a {}: only projects and micro-wishes are claimed",
            item.list
        )));
    }
    if item.unit == api.me.unit {
        return Err(ApiError::forbidden("a unit does not claim its own records"));
    }
    let (doc, record) = split_global_id(&id).ok_or_else(|| ApiError::bad("id"))?;
    let target = Target {
        unit: item.unit,
        doc,
        record: record.to_owned(),
    };
    let act = Act {
        note: b.note,
        ..Act::new(&random_id(), ActKind::Claim, target, now() as i64)
    };
    write_act(&api, act).await?;
    Ok((StatusCode::CREATED, item_json(&api, &id)?))
}

async fn view_items(State(api): State<Api>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let (format, mut q): (_, ItemQuery) = api_export::query(raw.as_deref())?;
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let scope = list_scope(&api, &view, q.scope.as_deref())?;
    let Some(format) = format else {
        let page = view.items(&scope, &q)?;
        return Ok(Json(
            serde_json::to_value(page).map_err(|e| ApiError::internal(e.to_string()))?,
        )
        .into_response());
    };
    // A spreadsheet holds every page.
    q.limit = Some(gongjian_view::MAX_LIMIT);
    let mut rows = Vec::new();
    loop {
        let page = view.items(&scope, &q)?;
        for item in page.items {
            rows.push(serde_json::to_value(item).map_err(|e| ApiError::internal(e.to_string()))?);
        }
        if rows.len() > MAX_EXPORT_ROWS {
            return Err(ApiError::bad(format!(
                "over {MAX_EXPORT_ROWS} rows: narrow the export with filters"
            )));
        }
        match page.next_cursor {
            Some(c) => q.cursor = Some(c),
            None => break,
        }
    }
    api_export::respond(format, "items", &rows)
}

/// Rows in one spreadsheet export.
pub const MAX_EXPORT_ROWS: usize = 500_000;

/// A view list as JSON `{key: rows}`, or as a spreadsheet.
pub(crate) fn list_response(
    format: Option<api_export::Format>,
    name: &str,
    body: Value,
    rows: impl FnOnce(&Value) -> Vec<Value>,
) -> Result<Response, ApiError> {
    match format {
        None => Ok(Json(body).into_response()),
        Some(f) => api_export::respond(f, name, &rows(&body)),
    }
}

async fn view_item(State(api): State<Api>, Id(id): Id) -> ApiResult {
    find_item(&api, &id)?;
    item_json(&api, &id)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct StatsQuery {
    #[serde(default)]
    by: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

async fn view_stats(State(api): State<Api>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let (format, q): (_, StatsQuery) = api_export::query(raw.as_deref())?;
    let by = match q.by.as_deref() {
        None | Some("street") => StatsBy::Street,
        Some("community") => StatsBy::Community,
        Some("unit") => StatsBy::Unit,
        Some(other) => {
            return Err(ApiError::bad(format!(
                "by: `{other}` is not one of street, community, unit"
            )));
        }
    };
    let body = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = list_scope(&api, &view, q.scope.as_deref())?;
        json!({"scope": scope, "stats": view.stats(&scope, by)})
    };
    list_response(format, "stats", body, |b| {
        b["stats"].as_array().cloned().unwrap_or_default()
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ScopeQuery {
    #[serde(default)]
    pub(crate) scope: Option<String>,
}

/// The scope of a digest or the units list: this unit or one below it
/// (default: this unit).
pub(crate) fn scope_of(api: &Api, view: &View, scope: Option<&str>) -> Result<UnitId, ApiError> {
    let unit = scope_param(api, scope)?;
    if !view.in_scope(&unit, &api.me.unit) {
        return Err(ApiError::forbidden(format!(
            "scope: {unit} is not {} or a unit below it",
            api.me.unit
        )));
    }
    Ok(unit)
}

/// The scope of a list (items, stats, matches, agreements, grids): this
/// unit, one below it, or one above it: a resident unit looks at its
/// community's lists, as much of them as this node holds.
pub(crate) fn list_scope(api: &Api, view: &View, scope: Option<&str>) -> Result<UnitId, ApiError> {
    let unit = scope_param(api, scope)?;
    if !view.in_scope(&unit, &api.me.unit) && !view.in_scope(&api.me.unit, &unit) {
        return Err(ApiError::forbidden(format!(
            "scope: {unit} is neither {} nor a unit above or below it",
            api.me.unit
        )));
    }
    Ok(unit)
}

fn scope_param(api: &Api, scope: Option<&str>) -> Result<UnitId, ApiError> {
    match scope {
        None => Ok(api.me.unit),
        Some(s) => s
            .parse()
            .map_err(|e| ApiError::bad(format!("scope: `{s}`: {e}"))),
    }
}

async fn view_digest(
    State(api): State<Api>,
    q: Result<Query<ScopeQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let view = api.view.read().map_err(|_| ApiError::lock())?;
    let scope = scope_of(&api, &view, q.scope.as_deref())?;
    Ok(Json(json!({
        "scope": scope,
        "digest": view.digest(&scope).to_string(),
    })))
}

async fn view_units(State(api): State<Api>, RawQuery(raw): RawQuery) -> Result<Response, ApiError> {
    let (format, q): (_, ScopeQuery) = api_export::query(raw.as_deref())?;
    let (scope, places) = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = scope_of(&api, &view, q.scope.as_deref())?;
        let places: Vec<gongjian_view::Place> = view
            .places()
            .filter(|p| view.in_scope(&p.unit, &scope))
            .cloned()
            .collect();
        (scope, places)
    };
    let units = api
        .backend
        .read(move |r| {
            places
                .into_iter()
                .map(|p| {
                    let heads = r.heads_of(&p.unit);
                    let mut held = 0u64;
                    let mut docs = 0usize;
                    let own: Vec<DocId> = r
                        .trust()
                        .documents()
                        .filter(|(_, g)| g.unit == p.unit)
                        .map(|(d, _)| *d)
                        .collect();
                    for d in own {
                        if let Ok(Some(m)) = r.store().doc_meta(&d) {
                            held += m.clock.values().sum::<u64>();
                            docs += 1;
                        }
                    }
                    let mut lacking = 0usize;
                    if let Some(h) = &heads {
                        for (d, announced) in &h.docs {
                            let have = r
                                .store()
                                .doc_meta(d)
                                .ok()
                                .flatten()
                                .map(|m| m.heads)
                                .unwrap_or_default();
                            lacking += announced
                                .iter()
                                .filter(|x| !have.contains(x))
                                .filter(|x| r.store().change(d, x).ok().flatten().is_none())
                                .count();
                        }
                    }
                    json!({
                        "unit": p.unit,
                        "kind": p.kind.to_string(),
                        "name": p.name,
                        "parent": p.parent,
                        "street": p.street,
                        "community": p.community,
                        "last_heard": heads.as_ref().map(|h| h.at),
                        "documents": docs,
                        "changes_held": held,
                        "heads_lacking": lacking,
                    })
                })
                .collect::<Vec<_>>()
        })
        .await?;
    let mut units = units;
    // By name in pinyin order (Chinese sorting people expect).
    units.sort_by_cached_key(|u| gongjian_view::pinyin_key(u["name"].as_str().unwrap_or("")));
    list_response(
        format,
        "units",
        json!({"scope": scope, "units": units}),
        |b| b["units"].as_array().cloned().unwrap_or_default(),
    )
}

async fn docs(State(api): State<Api>) -> ApiResult {
    let docs = api
        .backend
        .read(|r| {
            let mut out = Vec::new();
            // Every document whose genesis is held, with no changes yet too.
            for (doc, g) in r.trust().documents() {
                let m = r.store().doc_meta(doc).ok().flatten();
                out.push(json!({
                    "id": doc.to_string(),
                    "unit": g.unit,
                    "type": format!("{:?}", g.doc_type).to_lowercase(),
                    "parties": g.parties,
                    "heads": m.as_ref().map(|m| m.heads.iter().map(ToString::to_string).collect::<Vec<_>>()).unwrap_or_default(),
                    "changes": m.as_ref().map(|m| m.clock.values().sum::<u64>()).unwrap_or(0),
                }));
            }
            out
        })
        .await?;
    Ok(Json(json!({"docs": docs})))
}

async fn doc(State(api): State<Api>, Id(id): Id) -> ApiResult {
    let doc: DocId = id
        .parse()
        .map_err(|_| ApiError::bad(format!("`{id}` is not a document id (64 hex digits)")))?;
    let out = api
        .backend
        .read(move |r| {
            let Some(g) = r.trust().genesis(&doc).cloned() else {
                return Ok(None);
            };
            let Some(m) = r.store().doc_meta(&doc)? else {
                return Ok(None);
            };
            let am = r.load(&doc)?;
            let content =
                serde_json::to_value(automerge::AutoSerde::from(&am)).unwrap_or(Value::Null);
            Ok::<_, EngineError>(Some(json!({
                "id": doc.to_string(),
                "unit": g.unit,
                "type": format!("{:?}", g.doc_type).to_lowercase(),
                "parties": g.parties,
                "heads": m.heads.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "content": content,
            })))
        })
        .await??;
    out.map(Json)
        .ok_or_else(|| ApiError::not_found(format!("this node holds no document {id}")))
}

async fn openapi() -> Json<Value> {
    Json(crate::openapi::document())
}
