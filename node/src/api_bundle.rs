//! Sneakernet through the API (PROTOCOL.md §10), so `gongjian bundle`
//! works while the daemon holds the store: the state file, an export, an
//! import checked whole before anything is stored.

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gongjian_engine::{Bundle, BundleError, PeerState};
use gongjian_identity::UnitId;
use serde::Deserialize;

use crate::api::{Api, ApiError, ApiResult};
use crate::node::now;

/// Header of an export response: what it holds, as JSON.
pub const SUMMARY_HEADER: &str = "x-gongjian-summary";

fn body(b: Result<Bytes, BytesRejection>) -> Result<Bytes, ApiError> {
    b.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "the body is over this route's limit",
            )
        } else {
            ApiError::bad(format!("body: {}", r.body_text()))
        }
    })
}

pub(crate) fn bundle_error(e: BundleError) -> ApiError {
    match &e {
        BundleError::NotABundle { .. }
        | BundleError::Version { .. }
        | BundleError::Malformed(_)
        | BundleError::WrongUnit { .. } => ApiError::bad(e.to_string()),
        BundleError::BadSignature
        | BundleError::Foreign { .. }
        | BundleError::WrongSender { .. }
        | BundleError::BadRecord { .. }
        | BundleError::BadChange { .. } => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "untrusted", e.to_string())
        }
        BundleError::Engine(_) | BundleError::Scratch(_) | BundleError::TooLarge { .. } => {
            ApiError::internal(e.to_string())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ForQuery {
    #[serde(rename = "for", default)]
    for_unit: Option<String>,
}

fn octets(bytes: Vec<u8>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        bytes,
    )
        .into_response()
}

/// `GET /v1/bundles/state?for=UNIT`: what this node holds that `UNIT` may
/// see, for it to export only what this node lacks.
pub(crate) async fn state(
    State(api): State<Api>,
    q: Result<Query<ForQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let exporter: UnitId = q
        .for_unit
        .as_deref()
        .ok_or_else(|| ApiError::bad("for: name the unit that will export for this node"))?
        .parse()
        .map_err(|e| ApiError::bad(format!("for: {e}")))?;
    let state = api.backend.read(move |r| r.peer_state(&exporter)).await??;
    Ok(octets(state.encode()))
}

/// `POST /v1/bundles/export?for=UNIT`, the body empty or a state file: a
/// bundle of what `UNIT` may receive (less what the state says it holds).
pub(crate) async fn export(
    State(api): State<Api>,
    q: Result<Query<ForQuery>, QueryRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(q) = q?;
    let body = self::body(body)?;
    let have = if body.is_empty() {
        None
    } else {
        Some(PeerState::decode(&body).map_err(|e| ApiError::bad(format!("state file: {e}")))?)
    };
    let for_unit: Option<UnitId> = q
        .for_unit
        .as_deref()
        .map(|s| s.parse().map_err(|e| ApiError::bad(format!("for: {e}"))))
        .transpose()?;
    let made_for = match (for_unit, have.as_ref().map(|h| h.unit)) {
        (Some(f), Some(Some(h))) if f != h => {
            return Err(ApiError::bad(format!(
                "for: {f}, but the state file is of unit {h}"
            )));
        }
        (Some(f), _) => f,
        (None, Some(_)) => {
            return Err(ApiError::bad(
                "a state file needs for=UNIT (the unit it is from)",
            ));
        }
        (None, None) => api.me.unit,
    };
    let (bytes, summary) = api
        .backend
        .read(move |r| {
            if r.trust().unit(&made_for).is_none() {
                return Err(ApiError::bad(format!(
                    "for: {made_for}: no such unit is known to this node"
                )));
            }
            r.export_bundle(made_for, have.as_ref(), now())
                .map_err(bundle_error)
        })
        .await??;
    let mut resp = octets(bytes);
    if let Ok(v) = HeaderValue::from_str(&serde_json::to_string(&summary).unwrap_or_default()) {
        resp.headers_mut().insert(SUMMARY_HEADER, v);
    }
    Ok(resp)
}

/// `POST /v1/bundles/import`, the body a bundle (up to 2 GiB): checked
/// whole, then imported; refused with nothing stored otherwise.
pub(crate) async fn import(
    State(api): State<Api>,
    body: Result<Bytes, BytesRejection>,
) -> ApiResult {
    let body = self::body(body)?;
    if !body.starts_with(gongjian_engine::BUNDLE_MAGIC) {
        return Err(bundle_error(BundleError::NotABundle {
            expected: "GJBUNDLE",
        }));
    }
    let dir = api.data_dir.clone();
    let summary = api
        .backend
        .write(move |r| {
            let heads = |r: &gongjian_engine::Replica| {
                r.store()
                    .docs()
                    .map(|d| {
                        d.into_iter()
                            .map(|(d, m)| (d, m.heads))
                            .collect::<std::collections::HashMap<_, _>>()
                    })
                    .unwrap_or_default()
            };
            let before = heads(r);
            let res = (|| {
                let bundle = Bundle::parse(&body).map_err(bundle_error)?;
                // Imports run one at a time on the replica's thread, and
                // this process holds the store: any scratch copy left is
                // from an import that was killed.
                for e in std::fs::read_dir(dir.as_path())
                    .into_iter()
                    .flatten()
                    .flatten()
                {
                    if e.file_name()
                        .to_string_lossy()
                        .starts_with("import-scratch-")
                    {
                        std::fs::remove_dir_all(e.path()).map_err(|err| {
                            ApiError::internal(format!("removing {}: {err}", e.path().display()))
                        })?;
                    }
                }
                let scratch = dir.join(format!("import-scratch-{}", std::process::id()));
                r.import_bundle(&bundle, &scratch, now())
                    .map_err(bundle_error)
            })();
            // The documents that moved (an import that failed late may
            // have stored some chunks): peers hear of them, the view
            // refolds them.
            let docs: Vec<gongjian_identity::DocId> = heads(r)
                .into_iter()
                .filter(|(d, h)| before.get(d) != Some(h))
                .map(|(d, _)| d)
                .collect();
            (res, docs)
        })
        .await??;
    Ok(axum::Json(
        serde_json::to_value(summary).map_err(|e| ApiError::internal(e.to_string()))?,
    ))
}
