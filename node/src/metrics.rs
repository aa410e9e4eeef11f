//! `GET /metrics`: Prometheus text, no token for clients on this host
//! (a scraper elsewhere sends the API token).

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use gongjian_net::status::{FRAME_KINDS, TRAFFIC};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::api::{Api, ApiError};
use crate::node::now;

type Labels = Vec<(String, String)>;

fn counter(reg: &mut Registry, name: &str, help: &str, v: u64) {
    let c: Counter = Counter::default();
    c.inc_by(v);
    reg.register(name, help, c);
}

fn gauge(reg: &mut Registry, name: &str, help: &str, v: i64) {
    let g: Gauge = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn seconds(reg: &mut Registry, name: &str, help: &str, v: f64) {
    let g: Gauge<f64, std::sync::atomic::AtomicU64> = Gauge::default();
    g.set(v);
    reg.register(name, help, g);
}

fn labelled(reg: &mut Registry, name: &str, help: &str, key: &str, rows: &[(String, u64)]) {
    let f = Family::<Labels, Counter>::default();
    for (label, v) in rows {
        f.get_or_create(&vec![(key.to_owned(), label.clone())])
            .inc_by(*v);
    }
    reg.register(name, help, f);
}

pub(crate) async fn metrics(State(api): State<Api>, req: Request) -> Response {
    // A request a reverse proxy on this host forwarded is not local, nor
    // one addressed to a name (a page of another site whose name was made
    // to resolve to 127.0.0.1 reaches this port with its own Host).
    let forwarded = ["forwarded", "x-forwarded-for", "x-real-ip"]
        .iter()
        .any(|h| req.headers().contains_key(*h));
    let host_is_ip = req
        .headers()
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .is_none_or(|h| {
            let name = h.rsplit_once(':').map_or(h, |(n, _)| n);
            let name = name.trim_start_matches('[').trim_end_matches(']');
            name == "localhost" || name.parse::<std::net::IpAddr>().is_ok()
        });
    let local = !forwarded
        && host_is_ip
        && req
            .extensions()
            .get::<ConnectInfo<SocketAddr>>()
            .is_none_or(|c| c.0.ip().is_loopback());
    if !local && !crate::api::authorized(&api, req.headers()) {
        return ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "/metrics needs the API token from anywhere but this host",
        )
        .into_response();
    }
    match render(&api).await {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static(
                    "application/openmetrics-text; version=1.0.0; charset=utf-8",
                ),
            )],
            text,
        )
            .into_response(),
        Err(e) => e.into_response(),
    }
}

async fn render(api: &Api) -> Result<String, ApiError> {
    let key = api.me.key;
    let view = api.view.clone();
    let keeps_view = api.keeps_view;
    let (counters, store, docs, trust, cert) = api
        .backend
        .read(move |r| {
            let docs = r.trust().documents().count();
            let cert = r.trust().admit_until(&key, now()).ok().map(|(_, u)| u);
            (
                r.counters().clone(),
                r.store().clone(),
                docs,
                r.trust_shared(),
                cert,
            )
        })
        .await?;
    // (A node without the view has nothing to be behind.) The view's heads
    // copied, its lock let go before the walk: the sync thread folds rows
    // in under it.
    let (folded, items, acts, updates) = {
        let v = view.read().map_err(|_| ApiError::lock())?;
        let (i, a) = v.len();
        (keeps_view.then(|| v.folded_heads()), i, a, v.updates)
    };
    // The quarantine and the documents' metadata are walked on a blocking
    // thread, not the sync thread.
    let (size, quarantined, behind) = tokio::task::spawn_blocking(move || {
        let behind = folded
            .map(|f| gongjian_view::behind(&f, &store, &trust))
            .unwrap_or(0);
        (
            store.size_bytes(),
            store.quarantined_count().unwrap_or(0),
            behind,
        )
    })
    .await
    .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut reg = Registry::with_prefix("gongjian");
    counter(
        &mut reg,
        "sync_sessions",
        "Sync sessions started",
        TRAFFIC.sessions.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "changes_accepted",
        "Changes accepted by the acceptance rule",
        counters.accepted,
    );
    counter(
        &mut reg,
        "ingest_parts_handed",
        "Parts of large ingest calls handed to the store's writer before the call ended",
        counters.parts_handed,
    );
    counter(
        &mut reg,
        "ingest_extracted_aside",
        "Ingest calls whose documents went to the view's rows on a thread of their own",
        counters.extracted_aside,
    );
    counter(
        &mut reg,
        "ingest_applied_on_two_cores",
        "Ingest calls some of whose documents a worker thread applied to automerge beside their judging",
        counters.applied_on_two_cores,
    );
    counter(
        &mut reg,
        "changes_pending",
        "Changes quarantined waiting for dependencies or a genesis",
        counters.pending,
    );
    let rows = |m: &std::collections::BTreeMap<&'static str, u64>| -> Vec<(String, u64)> {
        m.iter().map(|(k, v)| ((*k).to_owned(), *v)).collect()
    };
    labelled(
        &mut reg,
        "changes_rejected",
        "Changes quarantined as rejected by the acceptance rule, by reason",
        "reason",
        &rows(&counters.rejected),
    );
    labelled(
        &mut reg,
        "changes_invalid",
        "Changes refused before the rule (nothing stored), by reason",
        "reason",
        &rows(&counters.invalid),
    );
    gauge(
        &mut reg,
        "quarantined_changes",
        "Changes held in quarantine",
        quarantined as i64,
    );
    counter(
        &mut reg,
        "network_received_bytes",
        "Sync bytes received",
        TRAFFIC.bytes_in.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "network_sent_bytes",
        "Sync bytes sent",
        TRAFFIC.bytes_out.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "network_received_frames",
        "Sync messages received",
        TRAFFIC.frames_in.load(Ordering::Relaxed),
    );
    counter(
        &mut reg,
        "network_sent_frames",
        "Sync messages sent",
        TRAFFIC.frames_out.load(Ordering::Relaxed),
    );
    {
        let f = Family::<Labels, Counter>::default();
        for (i, kind) in FRAME_KINDS.iter().enumerate() {
            for (dir, v) in [
                ("received", &TRAFFIC.kind_in[i]),
                ("sent", &TRAFFIC.kind_out[i]),
            ] {
                f.get_or_create(&vec![
                    ("direction".to_owned(), dir.to_owned()),
                    ("kind".to_owned(), (*kind).to_owned()),
                ])
                .inc_by(v.load(Ordering::Relaxed));
            }
        }
        reg.register(
            "network_message_bytes",
            "Sync bytes by direction and kind of frame (length prefixes included; a stream's first frame is its hello)",
            f,
        );
    }
    if let Some((_, st)) = api.backend.net() {
        let f = Family::<Labels, Gauge>::default();
        let connected = st.peers.values().filter(|p| p.connected).count();
        f.get_or_create(&vec![("state".into(), "connected".into())])
            .set(connected as i64);
        f.get_or_create(&vec![("state".into(), "known".into())])
            .set(st.peers.len() as i64);
        reg.register("peers", "Peers by state", f);
        counter(
            &mut reg,
            "peer_misbehaviour",
            "Malformed or badly signed input from peers",
            st.misbehaviour,
        );
        counter(
            &mut reg,
            "unadmitted_connections_closed",
            "Inbound connections closed: no admitted hello in time, or evicted while too many waited",
            st.unadmitted_closed,
        );
        counter(
            &mut reg,
            "handshakes_refused",
            "Incoming connections refused: their address already had as many handshakes under way as one address may",
            st.handshakes_refused,
        );
        counter(
            &mut reg,
            "bare_hellos_refused",
            "Hellos without certificates (a peer that synced leaves them out) from a key this node could not admit: the peer's next hello carries them",
            st.bare_hellos_refused,
        );
        counter(
            &mut reg,
            "view_lag_samples",
            "Frames of changes from peers folded into the view (the lag's samples)",
            st.view_lag.samples,
        );
        seconds(
            &mut reg,
            "view_lag_p50_seconds",
            "Median time from a frame of changes read off a stream to the view holding them (last 1,024)",
            st.view_lag.percentile(0.5),
        );
        seconds(
            &mut reg,
            "view_lag_p99_seconds",
            "99th percentile of the same (last 1,024)",
            st.view_lag.percentile(0.99),
        );
        counter(
            &mut reg,
            "scrub_documents",
            "Documents the node's own scrub read back and checked",
            st.scrub.documents_checked,
        );
        counter(
            &mut reg,
            "scrub_problems",
            "Corrupt data the node's own scrub found",
            st.scrub.problems,
        );
        counter(
            &mut reg,
            "scrub_dropped",
            "Documents dropped as corrupt by the node's own scrub, to be fetched again from peers",
            st.scrub.dropped,
        );
        counter(
            &mut reg,
            "scrub_records",
            "Records the node's own scrub read back and verified",
            st.scrub.records_checked,
        );
        counter(
            &mut reg,
            "settled_changes",
            "Received changes applied to automerge after being stored (a node without the view)",
            st.settle.changes,
        );
        counter(
            &mut reg,
            "settle_changed_documents",
            "Documents whose accepted set settling changed (automerge refused changes, or took one it had refused)",
            st.settle.changed,
        );
        counter(
            &mut reg,
            "scrub_records_repaired",
            "Corrupt records written again from their verified copy, or dropped to be fetched again",
            st.scrub.records_repaired,
        );
        counter(
            &mut reg,
            "scrub_yielded",
            "Ticks (about a second each) the node's own scrub let go by while the node was busy syncing",
            st.scrub.yielded,
        );
    }
    gauge(
        &mut reg,
        "view_documents_behind",
        "Documents whose accepted heads the merged view has not folded in (its lag)",
        behind as i64,
    );
    counter(
        &mut reg,
        "view_updates",
        "Documents folded into the merged view",
        updates,
    );
    gauge(
        &mut reg,
        "view_items",
        "Items in the merged view",
        items as i64,
    );
    gauge(
        &mut reg,
        "view_acts",
        "Acts in the merged view",
        acts as i64,
    );
    gauge(&mut reg, "documents", "Documents known", docs as i64);
    gauge(
        &mut reg,
        "store_bytes",
        "RocksDB live SST files and memtables",
        size as i64,
    );
    gauge(
        &mut reg,
        "certificate_valid",
        "1 while this node's certificate chain admits it",
        i64::from(cert.is_some()),
    );
    if let Some(until) = cert {
        gauge(
            &mut reg,
            "certificate_expiry_seconds",
            "Seconds until this node's certificate chain expires",
            until as i64 - now() as i64,
        );
    }
    let mut out = String::new();
    encode(&mut out, &reg).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(out)
}
