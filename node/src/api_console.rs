//! People on the API: who is asking (the node's token, or a user's session
//! from the web console), what their role lets them do, the audit log of
//! every write, and the console's own pages, built into the binary.
//!
//! A request carries either `Authorization: Bearer <DIR/api.token>` (the
//! node's own scripts: administrator) or the `gongjian_session` cookie set
//! by `POST /v1/login`. A cookie request that writes must also carry
//! `X-Gongjian-Console: 1`: a page of another site cannot set that header
//! without the node's consent, so it cannot write with a user's cookie.

use axum::Json;
use axum::body::Body;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::accounts::{AccountError, Role};
use crate::api::{Api, ApiError, ApiResult};
use crate::node::now;

/// The session cookie's name.
pub const COOKIE: &str = "gongjian_session";
/// The header a cookie request that writes must carry.
pub const CONSOLE_HEADER: &str = "x-gongjian-console";
/// The header a token request may name its person with.
pub const PERSON_HEADER: &str = "x-gongjian-person";
/// The name the audit log gives requests made with the node's token.
pub const TOKEN_PERSON: &str = "api.token";

/// Who a request is from.
#[derive(Debug, Clone)]
pub struct Person {
    /// The user's name, or [`TOKEN_PERSON`].
    pub name: String,
    /// The name written on records (`by`); empty when not known.
    pub shown: String,
    pub role: Role,
    /// The session token, for a console user.
    pub session: Option<String>,
}

tokio::task_local! {
    static PERSON: Person;
}

/// The name to write on a record made by the current request: the user's
/// display name (or login name), the `X-Gongjian-Person` a token request
/// gave, or empty.
pub fn person_by() -> String {
    PERSON.try_with(|p| p.shown.clone()).unwrap_or_default()
}

impl From<AccountError> for ApiError {
    fn from(e: AccountError) -> ApiError {
        match &e {
            AccountError::Invalid(_) => ApiError::bad(e.to_string()),
            AccountError::NoUser(_) => ApiError::not_found(e.to_string()),
            AccountError::Exists(_) => ApiError::new(StatusCode::CONFLICT, "exists", e.to_string()),
            AccountError::BadLogin => {
                ApiError::new(StatusCode::UNAUTHORIZED, "bad_login", e.to_string())
            }
            AccountError::Locked(..) => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "locked", e.to_string())
            }
            AccountError::Busy => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, "busy", e.to_string())
            }
            AccountError::LastAdministrator(_) => {
                ApiError::new(StatusCode::CONFLICT, "last_administrator", e.to_string())
            }
            AccountError::Store(_) => ApiError::internal(e.to_string()),
        }
    }
}

fn unauthorized(message: &str) -> ApiError {
    ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
}

fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The session token in the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_owned())
}

/// The role a request needs.
fn needs(method: &Method, path: &str) -> Role {
    let admin = ["/v1/users", "/v1/audit", "/v1/backup", "/v1/bundles"];
    if admin.iter().any(|p| path.starts_with(p)) {
        return Role::Administrator;
    }
    if matches!(*method, Method::GET | Method::HEAD)
        || ["/v1/session", "/v1/password"].contains(&path)
    {
        return Role::Viewer;
    }
    Role::Operator
}

/// Who is asking: the token, or a live session; `Err` is the response.
fn identify(api: &Api, headers: &HeaderMap) -> Result<Person, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if let Some(t) = bearer {
        if !same(t.trim().as_bytes(), api.token.as_bytes()) {
            return Err(unauthorized("wrong token"));
        }
        let shown = match headers.get(PERSON_HEADER).map(|v| v.to_str()) {
            None => String::new(),
            // A header value is ASCII; a Chinese name comes percent-encoded.
            Some(Ok(v)) => percent_decode(v)
                .filter(|p| {
                    p.chars().count() <= gongjian_model::MAX_PERSON
                        && !p.chars().any(char::is_control)
                })
                .ok_or_else(|| {
                    ApiError::bad(format!(
                        "{PERSON_HEADER}: a UTF-8 name of at most {} characters, percent-encoded",
                        gongjian_model::MAX_PERSON
                    ))
                })?,
            Some(Err(_)) => {
                return Err(ApiError::bad(format!("{PERSON_HEADER}: not ASCII")));
            }
        };
        return Ok(Person {
            // The audit log names the person a script gave, beside the token.
            name: if shown.is_empty() {
                TOKEN_PERSON.to_owned()
            } else {
                format!("{TOKEN_PERSON} ({shown})")
            },
            shown,
            role: Role::Administrator,
            session: None,
        });
    }
    let Some(token) = session_cookie(headers) else {
        return Err(unauthorized(
            "log in (POST /v1/login) or send Authorization: Bearer <the token in DIR/api.token>",
        ));
    };
    let user = match api.accounts.session(&token, now()) {
        Ok(Some((u, _))) => u,
        Ok(None) => return Err(unauthorized("the session has ended: log in again")),
        Err(e) => return Err(ApiError::from(e)),
    };
    Ok(Person {
        shown: user.shown().to_owned(),
        name: user.name,
        role: user.role,
        session: Some(token),
    })
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Largest response body the audit log looks into for the id written.
const AUDIT_PEEK: usize = 1 << 20;

/// The `/v1` middleware: identifies the person, checks the role, runs the
/// request with the person known to the handlers, and records every
/// request that writes in the audit log (with the id written, or the
/// error).
pub async fn auth(State(api): State<Api>, req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let writes = !matches!(method, Method::GET | Method::HEAD);
    let action = format!("{method} {path}");
    let person = match identify(&api, req.headers()) {
        Ok(p) => p,
        Err(e) => {
            if writes && api.accounts.anonymous_line(now()) {
                let nobody = Person {
                    name: "-".to_owned(),
                    shown: String::new(),
                    role: Role::Viewer,
                    session: None,
                };
                record(
                    &api,
                    &nobody,
                    None,
                    &action,
                    e.status().as_u16(),
                    e.message(),
                );
            }
            return e.into_response();
        }
    };
    let need = needs(&method, &path);
    let refused = if writes
        && person.session.is_some()
        && req.headers().get(CONSOLE_HEADER).is_none_or(|v| v != "1")
    {
        Some(format!(
            "a write with a session cookie must carry the header {CONSOLE_HEADER}: 1"
        ))
    } else if person.role < need {
        Some(format!(
            "{} needs the {} role; {} is {}",
            path,
            need.as_str(),
            person.name,
            person.role.as_str()
        ))
    } else if path == "/v1/backup" && person.session.is_some() {
        Some(
            "a backup writes to the node's disk: take it with `gongjian backup` or the API token"
                .to_owned(),
        )
    } else {
        None
    };
    if let Some(why) = refused {
        if writes {
            record(&api, &person, Some(person.role), &action, 403, &why);
        }
        return ApiError::forbidden(why).into_response();
    }
    if !writes {
        return PERSON.scope(person, next.run(req)).await;
    }
    // A write runs in a task of its own, with its audit line: a client
    // that goes away mid-request cannot leave a committed write unaudited.
    let (who_then, action_then) = (person.clone(), action.clone());
    let audit_api = api.clone();
    let task = tokio::spawn(async move {
        let who = person.clone();
        let resp = PERSON.scope(person, next.run(req)).await;
        let (parts, body) = resp.into_parts();
        let json = parts
            .headers
            .get(header::CONTENT_TYPE)
            .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
        if !json {
            // A bundle or a spreadsheet: audited by its status and size,
            // streamed on untouched.
            let size = parts
                .headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .map(|n| format!("{n} bytes"))
                .unwrap_or_default();
            record(
                &api,
                &who,
                Some(who.role),
                &action,
                parts.status.as_u16(),
                &size,
            );
            return Response::from_parts(parts, body);
        }
        let bytes = match axum::body::to_bytes(body, AUDIT_PEEK).await {
            Ok(b) => b,
            Err(_) => {
                record(
                    &api,
                    &who,
                    Some(who.role),
                    &action,
                    500,
                    "response over 1 MiB",
                );
                return ApiError::internal("response body too large to audit").into_response();
            }
        };
        let detail = serde_json::from_slice::<Value>(&bytes)
            .ok()
            .and_then(|v| {
                ["/audit", "/id", "/error/message"]
                    .iter()
                    .find_map(|k| v.pointer(k).and_then(Value::as_str).map(str::to_owned))
            })
            .unwrap_or_default();
        record(
            &api,
            &who,
            Some(who.role),
            &action,
            parts.status.as_u16(),
            &detail,
        );
        Response::from_parts(parts, Body::from(bytes))
    });
    match task.await {
        Ok(resp) => resp,
        Err(e) => {
            // The handler panicked; what it wrote (if anything) is durable.
            let why = format!("the request failed inside the node: {e}");
            record(
                &audit_api,
                &who_then,
                Some(who_then.role),
                &action_then,
                500,
                &why,
            );
            ApiError::internal(why).into_response()
        }
    }
}

/// One line of the audit log for a request; a failure to write it is
/// logged loudly (the write it records is durable already).
fn record(api: &Api, who: &Person, role: Option<Role>, action: &str, status: u16, detail: &str) {
    if let Err(e) = api
        .accounts
        .audit(now(), &who.name, role, action, status, detail)
    {
        tracing::error!(error = %e, action, person = who.name, "audit log write failed");
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Login {
    name: String,
    password: String,
}

/// Password hashes computed at once at most (each Argon2id uses 19 MiB
/// and a core for tens of milliseconds): a flood of logins waits here
/// instead of exhausting the machine.
static HASHING: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Runs `f` (which hashes a password) off the async threads, two at a time.
async fn hashing<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, AccountError> + Send + 'static,
) -> Result<T, ApiError> {
    let _permit = HASHING
        .acquire()
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::internal(e.to_string()))??)
}

/// The session cookie; `Secure` when the request came through a TLS proxy.
fn cookie(value: &str, max_age: u64, headers: &HeaderMap) -> HeaderValue {
    let tls = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    HeaderValue::from_str(&format!(
        "{COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if tls { "; Secure" } else { "" }
    ))
    .expect("cookie is ASCII")
}

/// `POST /v1/login`: checks a user's password, sets the session cookie.
pub(crate) async fn login(
    State(api): State<Api>,
    headers: HeaderMap,
    body: Result<Json<Login>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(b) = body?;
    let accounts = api.accounts.clone();
    let name = b.name.clone();
    let t = now();
    let res = hashing(move || accounts.login(&name, &b.password, t)).await;
    let line = match &res {
        Ok((_, u, _)) => Some(("login", Some(u.role), String::new())),
        // Failed logins are audited up to a rate: nobody can fill the
        // disk with them.
        Err(e) if api.accounts.anonymous_line(t) => {
            Some(("login_failed", None, e.message().to_owned()))
        }
        Err(_) => None,
    };
    if let Some((action, role, detail)) = line
        && let Err(e) = api.accounts.audit(t, &b.name, role, action, 0, &detail)
    {
        tracing::error!(error = %e, "audit log write failed");
    }
    let (token, user, expires_at) = res?;
    let mut resp = Json(json!({
        "user": user.public(),
        "expires_at": expires_at,
        "unit": api.me.unit,
        "unit_name": api.me.name,
    }))
    .into_response();
    resp.headers_mut().insert(
        header::SET_COOKIE,
        cookie(&token, crate::accounts::SESSION_SECS, &headers),
    );
    Ok(resp)
}

/// `POST /v1/logout`: ends the session, if any (no login needed: an
/// ended session's cookie is cleared too).
pub(crate) async fn logout(
    State(api): State<Api>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(token) = session_cookie(&headers) {
        if let Ok(Some((user, _))) = api.accounts.session(&token, now()) {
            let who = Person {
                name: user.name.clone(),
                shown: String::new(),
                role: user.role,
                session: None,
            };
            record(&api, &who, Some(user.role), "logout", 0, "");
        }
        api.accounts.logout(&token)?;
    }
    let mut resp = Json(json!({"logged_out": true})).into_response();
    resp.headers_mut()
        .insert(header::SET_COOKIE, cookie("", 0, &headers));
    Ok(resp)
}

/// `GET /v1/session`: who is asking, with which role, for which unit.
pub(crate) async fn session(State(api): State<Api>) -> ApiResult {
    let p = PERSON
        .try_with(Clone::clone)
        .map_err(|_| ApiError::internal("no person"))?;
    let user = match &p.session {
        Some(_) => api.accounts.user(&p.name)?.map(|u| u.public()),
        None => None,
    };
    // The units above this one, nearest first: a list's scope may be one
    // of them (a whistle blown above, a community's lists for a resident
    // unit).
    let ancestors: Vec<Value> = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let mut out = Vec::new();
        let mut at = view.place(&api.me.unit).and_then(|p| p.parent);
        while let Some(u) = at {
            let Some(place) = view.place(&u) else { break };
            out.push(json!({"unit": u, "name": place.name, "kind": place.kind.to_string()}));
            at = place.parent;
            if out.len() > 8 {
                break;
            }
        }
        out
    };
    Ok(Json(json!({
        "person": p.name,
        "shown": p.shown,
        "role": p.role,
        "via": if p.session.is_some() { "session" } else { "token" },
        "user": user,
        "unit": api.me.unit,
        "unit_name": api.me.name,
        "unit_kind": api.me.kind.to_string(),
        "ancestors": ancestors,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewPassword {
    old: String,
    new: String,
}

/// `POST /v1/password`: a user changes their own password (their other
/// sessions end; this one too: log in again).
pub(crate) async fn password(
    State(api): State<Api>,
    body: Result<Json<NewPassword>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let p = PERSON
        .try_with(Clone::clone)
        .map_err(|_| ApiError::internal("no person"))?;
    if p.session.is_none() {
        return Err(ApiError::bad(
            "the token has no password; change users' passwords with PATCH /v1/users/{name}",
        ));
    }
    let accounts = api.accounts.clone();
    hashing(move || {
        accounts.verify(&p.name, &b.old, now())?;
        accounts.update_user(&p.name, None, None, Some(&b.new), None)
    })
    .await?;
    Ok(Json(json!({"changed": true})))
}

/// `GET /v1/users`.
pub(crate) async fn users(State(api): State<Api>) -> ApiResult {
    let users: Vec<Value> = api.accounts.users()?.iter().map(|u| u.public()).collect();
    Ok(Json(json!({"users": users})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct NewUser {
    name: String,
    #[serde(default)]
    display_name: String,
    role: String,
    password: String,
}

/// `POST /v1/users`.
pub(crate) async fn add_user(
    State(api): State<Api>,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Json(b) = body?;
    let role: Role = b.role.parse()?;
    let accounts = api.accounts.clone();
    let user =
        hashing(move || accounts.add_user(&b.name, &b.display_name, role, &b.password, now()))
            .await?;
    let mut v = user.public();
    v["id"] = json!(user.name);
    Ok((StatusCode::CREATED, Json(v)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct UserPatch {
    #[serde(default)]
    display_name: Option<String>,
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

/// `PATCH /v1/users/{name}`.
pub(crate) async fn update_user(
    State(api): State<Api>,
    crate::api::Id(name): crate::api::Id,
    body: Result<Json<UserPatch>, JsonRejection>,
) -> ApiResult {
    let Json(b) = body?;
    let role = b.role.as_deref().map(str::parse::<Role>).transpose()?;
    let accounts = api.accounts.clone();
    // What changed, for the audit log (never the password itself).
    let mut changed = Vec::new();
    if let Some(d) = &b.display_name {
        changed.push(format!("display_name={d}"));
    }
    if let Some(r) = role {
        changed.push(format!("role={}", r.as_str()));
    }
    if b.password.is_some() {
        changed.push("password".to_owned());
    }
    if let Some(d) = b.disabled {
        changed.push(format!("disabled={d}"));
    }
    let user = hashing(move || {
        accounts.update_user(
            &name,
            b.display_name.as_deref(),
            role,
            b.password.as_deref(),
            b.disabled,
        )
    })
    .await?;
    let mut v = user.public();
    v["id"] = json!(user.name);
    v["audit"] = json!(format!("{}: {}", user.name, changed.join(", ")));
    Ok(Json(v))
}

/// `DELETE /v1/users/{name}`.
pub(crate) async fn remove_user(
    State(api): State<Api>,
    crate::api::Id(name): crate::api::Id,
) -> ApiResult {
    api.accounts.remove_user(&name)?;
    Ok(Json(json!({"removed": name, "id": name})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditQuery {
    #[serde(default)]
    before: Option<u64>,
    #[serde(default)]
    limit: Option<usize>,
}

/// `GET /v1/audit`: newest first; `next_before` pages on.
pub(crate) async fn audit(
    State(api): State<Api>,
    q: Result<Query<AuditQuery>, QueryRejection>,
) -> ApiResult {
    let Query(q) = q?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=crate::accounts::MAX_AUDIT_PAGE).contains(&limit) {
        return Err(ApiError::bad(format!(
            "limit: 1 to {}",
            crate::accounts::MAX_AUDIT_PAGE
        )));
    }
    let entries = api.accounts.audit_page(q.before, limit)?;
    let next = (entries.len() == limit)
        .then(|| entries.last().map(|e| e.seq))
        .flatten();
    Ok(Json(json!({"entries": entries, "next_before": next})))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReportQuery {
    /// `YYYY-MM`; default: the current month.
    #[serde(default)]
    month: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// The first second of a month and of the next (UTC+8, China Standard
/// Time, the district's calendar).
pub fn month_bounds(month: &str) -> Option<(i64, i64)> {
    let (y, m) = month.split_once('-')?;
    if y.len() != 4 || m.len() != 2 {
        return None;
    }
    let (y, m): (i64, i64) = (y.parse().ok()?, m.parse().ok()?);
    if !(2000..=2100).contains(&y) || !(1..=12).contains(&m) {
        return None;
    }
    let start = crate::cmd_api::days_from_civil(y, m, 1) * 86_400 - 8 * 3600;
    let (ny, nm) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
    let end = crate::cmd_api::days_from_civil(ny, nm, 1) * 86_400 - 8 * 3600;
    Some((start, end))
}

/// The month (`YYYY-MM`, China Standard Time) of a Unix time.
pub fn month_of(t: u64) -> String {
    let days = (t as i64 + 8 * 3600).div_euclid(86_400);
    // civil_from_days (Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}")
}

/// `GET /v1/view/report?month=YYYY-MM`: the monthly figures reported
/// upward (also `format=csv|xlsx`: one row per figure).
pub(crate) async fn report(
    State(api): State<Api>,
    axum::extract::RawQuery(raw): axum::extract::RawQuery,
) -> Result<Response, ApiError> {
    let (format, q): (_, ReportQuery) = crate::api_export::query(raw.as_deref())?;
    let month = q.month.unwrap_or_else(|| month_of(now()));
    let (from, to) = month_bounds(&month).ok_or_else(|| {
        ApiError::bad(format!(
            "month: `{month}` is not a month YYYY-MM between 2000-01 and 2100-12"
        ))
    })?;
    let report = {
        let view = api.view.read().map_err(|_| ApiError::lock())?;
        let scope = crate::api::list_scope(&api, &view, q.scope.as_deref())?;
        view.report(&scope, from, to)
    };
    let mut body = serde_json::to_value(&report).map_err(|e| ApiError::internal(e.to_string()))?;
    body["month"] = json!(month);
    crate::api::list_response(format, "report", body, |b| {
        let mut rows = Vec::new();
        let mut push = |section: &str, item: &str, figure: &str, value: &Value| {
            rows.push(json!({"section": section, "item": item, "figure": figure, "value": value}));
        };
        for l in b["problems"].as_array().into_iter().flatten() {
            let name = l["level_zh"].as_str().unwrap_or_default();
            push("问题（按层级）", name, "发现", &l["found"]);
            push("问题（按层级）", name, "解决", &l["resolved"]);
        }
        for a in b["problems_by_area"].as_array().into_iter().flatten() {
            let name = a["area_name"].as_str().unwrap_or("—");
            push("问题（按区域）", name, "发现", &a["found"]);
            push("问题（按区域）", name, "解决", &a["resolved"]);
        }
        for l in b["lists"].as_array().into_iter().flatten() {
            let name = l["list_zh"].as_str().unwrap_or_default();
            for (k, zh) in [
                ("created", "新增"),
                ("resolved", "解决"),
                ("claimed", "认领"),
                ("open_at_end", "月末未办结"),
            ] {
                push("清单", name, zh, &l[k]);
            }
        }
        for (k, zh) in [
            ("active", "履行中"),
            ("signed", "已签订"),
            ("draft", "草拟"),
            ("expired", "已到期"),
            ("terminated", "已终止"),
            ("signatures", "本月签署"),
            ("expiring_30_days", "30天内到期"),
        ] {
            push("共建协议", zh, "数量", &b["agreements"][k]);
        }
        rows
    })
}

// The console: three files, built into the binary.
const INDEX: &str = include_str!("../console/index.html");
const APP_JS: &str = include_str!("../console/app.js");
const APP_CSS: &str = include_str!("../console/app.css");

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
        ],
        body,
    )
        .into_response()
}

pub(crate) async fn index() -> Response {
    asset(INDEX, "text/html; charset=utf-8")
}
pub(crate) async fn app_js() -> Response {
    asset(APP_JS, "text/javascript; charset=utf-8")
}
pub(crate) async fn app_css() -> Response {
    asset(APP_CSS, "text/css; charset=utf-8")
}
pub(crate) async fn root() -> Redirect {
    Redirect::to("/console/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_bounded_in_china_standard_time() {
        let (from, to) = month_bounds("2026-11").unwrap();
        // 2026-11-01 00:00 +08:00 and 2026-12-01 00:00 +08:00.
        assert_eq!(from, 1_793_462_400);
        assert_eq!(to - from, 30 * 86_400);
        assert_eq!(month_of(from as u64), "2026-11");
        assert_eq!(month_of(from as u64 - 1), "2026-10");
        assert_eq!(month_of(to as u64), "2026-12");
        let (f, t) = month_bounds("2024-02").unwrap();
        assert_eq!(t - f, 29 * 86_400);
        for bad in ["2026-13", "2026-1", "26-11", "1999-12", "2026/11", ""] {
            assert!(month_bounds(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn roles_needed_by_path() {
        assert_eq!(needs(&Method::GET, "/v1/view/items"), Role::Viewer);
        assert_eq!(needs(&Method::POST, "/v1/items"), Role::Operator);
        assert_eq!(needs(&Method::GET, "/v1/audit"), Role::Administrator);
        assert_eq!(needs(&Method::POST, "/v1/users"), Role::Administrator);
        assert_eq!(needs(&Method::POST, "/v1/password"), Role::Viewer);
        assert_eq!(needs(&Method::POST, "/v1/backup"), Role::Administrator);
        assert_eq!(
            percent_decode("%E7%8E%8B%E8%8A%B3").as_deref(),
            Some("王芳")
        );
        assert_eq!(percent_decode("%E7%8E"), None);
    }
}
