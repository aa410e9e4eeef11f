//! What the network knows of its peers, for `/v1/node` and the console.

use std::collections::BTreeMap;

use gongjian_identity::{PublicKey, UnitId};
use libp2p::{Multiaddr, PeerId};
use serde::Serialize;

#[derive(Debug, Clone, Default, Serialize)]
pub struct PeerStatus {
    /// Known once the peer's hello admitted it.
    pub unit: Option<UnitId>,
    pub key: Option<PublicKey>,
    pub connected: bool,
    /// Through a relay (`/p2p-circuit`) rather than direct.
    pub relayed: bool,
    pub address: Option<Multiaddr>,
    /// Unix seconds of the last admission or message.
    pub last_seen: Option<u64>,
    pub last_synced: Option<u64>,
    pub pending_docs: usize,
    pub changes_received: u64,
    pub bytes_received: u64,
    pub misbehaviour: u64,
    /// Why the peer was last penalised.
    pub last_misbehaviour: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct NetStatus {
    pub peer_id: Option<PeerId>,
    pub listen: Vec<Multiaddr>,
    pub peers: BTreeMap<PeerId, PeerStatus>,
    /// Misbehaviour seen from any peer since start.
    pub misbehaviour: u64,
    /// Inbound connections closed because their peer was not admitted in
    /// time, or evicted by newer ones while too many waited.
    pub unadmitted_closed: u64,
    /// Peer ids of every certified, unrevoked key the node knows: their
    /// connections never wait among the strangers' (kept by the sync
    /// actor; shared, so a status snapshot does not copy it).
    #[serde(skip)]
    pub members: std::sync::Arc<std::collections::HashSet<PeerId>>,
    /// Records the member set was last computed from.
    #[serde(skip)]
    pub members_from: usize,
    /// The node's own scrub since start.
    pub scrub: ScrubStatus,
    /// From a frame of changes read off a stream to the merged view holding
    /// them (the last 1,024 such frames).
    pub view_lag: ViewLag,
}

/// Percentiles of the last view lags, in seconds.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct ViewLag {
    /// Frames that brought changes since start.
    pub samples: u64,
    pub p50_seconds: f64,
    pub p99_seconds: f64,
    pub max_seconds: f64,
}

/// What the node's own scrub did since start.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct ScrubStatus {
    pub documents_checked: u64,
    pub problems: u64,
    /// Documents dropped as corrupt, to be fetched again from peers.
    pub dropped: u64,
    pub records_checked: u64,
    /// Corrupt records written again from their verified copy, or
    /// dropped to be fetched again.
    pub records_repaired: u64,
    /// Full passes over the store completed.
    pub passes: u64,
}

/// Sync traffic of this process since start, for metrics. One daemon runs
/// per process; nodes started in one test process share these.
#[derive(Debug, Default)]
pub struct Traffic {
    pub bytes_in: std::sync::atomic::AtomicU64,
    pub bytes_out: std::sync::atomic::AtomicU64,
    pub frames_in: std::sync::atomic::AtomicU64,
    pub frames_out: std::sync::atomic::AtomicU64,
    /// Sync sessions started (both roles).
    pub sessions: std::sync::atomic::AtomicU64,
}

pub static TRAFFIC: Traffic = Traffic {
    bytes_in: std::sync::atomic::AtomicU64::new(0),
    bytes_out: std::sync::atomic::AtomicU64::new(0),
    frames_in: std::sync::atomic::AtomicU64::new(0),
    frames_out: std::sync::atomic::AtomicU64::new(0),
    sessions: std::sync::atomic::AtomicU64::new(0),
};
