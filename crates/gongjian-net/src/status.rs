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
    /// Incoming connections refused because their address already had as
    /// many handshakes under way as one address may.
    pub handshakes_refused: u64,
    /// Hellos without certificates from a key this node could not admit
    /// (the peer believed them held: this store was replaced, say); the
    /// peer's next hello carries them.
    pub bare_hellos_refused: u64,
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
    /// Deferred application since start (a node that keeps no view).
    pub settle: SettleStatus,
    /// From a frame of changes read off a stream to the merged view holding
    /// them (the last 1,024 such frames).
    pub view_lag: ViewLag,
}

/// The last view lags, in seconds; their percentiles are taken when read
/// (recording one, on the sync thread for every frame of changes, is a
/// push).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ViewLag {
    /// Frames that brought changes since start.
    pub samples: u64,
    window: std::collections::VecDeque<f64>,
}

impl ViewLag {
    /// Lags kept for the percentiles.
    pub const WINDOW: usize = 1024;

    /// Records one lag.
    pub fn record(&mut self, secs: f64) {
        if self.window.len() == Self::WINDOW {
            self.window.pop_front();
        }
        self.window.push_back(secs);
        self.samples += 1;
    }

    /// The `p` percentile (0 to 1) of the last lags, nearest rank; 0 if none.
    pub fn percentile(&self, p: f64) -> f64 {
        if self.window.is_empty() {
            return 0.0;
        }
        let mut w: Vec<f64> = self.window.iter().copied().collect();
        let i = ((w.len() - 1) as f64 * p.clamp(0.0, 1.0)).round() as usize;
        *w.select_nth_unstable_by(i, f64::total_cmp).1
    }
}

impl serde::Serialize for ViewLag {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = s.serialize_struct("ViewLag", 4)?;
        st.serialize_field("samples", &self.samples)?;
        st.serialize_field("p50_seconds", &self.percentile(0.5))?;
        st.serialize_field("p99_seconds", &self.percentile(0.99))?;
        st.serialize_field("max_seconds", &self.percentile(1.0))?;
        st.end()
    }
}

#[cfg(test)]
mod tests {
    use super::ViewLag;

    #[test]
    fn view_lag_percentiles_are_of_the_last_window() {
        let mut lag = ViewLag::default();
        assert_eq!(lag.percentile(0.99), 0.0);
        for i in 0..2000 {
            lag.record(i as f64);
        }
        assert_eq!(lag.samples, 2000);
        // The last 1,024: 976..=1999.
        assert_eq!(lag.percentile(0.0), 976.0);
        assert_eq!(lag.percentile(1.0), 1999.0);
        assert_eq!(lag.percentile(0.5), 1488.0);
        let json = serde_json::to_value(&lag).unwrap();
        assert_eq!(json["samples"], 2000);
        assert_eq!(json["max_seconds"], 1999.0);
        assert_eq!(json["p99_seconds"], lag.percentile(0.99));
    }
}

/// What settling deferred documents did since start
/// (`gongjian_engine::Replica::settle`).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SettleStatus {
    /// Documents settled: every accepted change applied to automerge.
    pub documents: u64,
    pub changes: u64,
    /// Documents whose accepted set settling changed (automerge refused
    /// changes, moved to quarantine; or took one it had refused).
    pub changed: u64,
    /// Whether documents still wait to be settled (as of the last tick).
    pub waiting: bool,
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
    /// Ticks (about a second each) the scrub let go by while the node was
    /// busy syncing.
    pub yielded: u64,
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
    /// Bytes received and sent by kind of frame ([`FRAME_KINDS`]).
    pub kind_in: [std::sync::atomic::AtomicU64; FRAME_KINDS.len()],
    pub kind_out: [std::sync::atomic::AtomicU64; FRAME_KINDS.len()],
}

/// The kinds of frame the traffic is counted by: a stream's first frame
/// is the hello; the others are sync messages, told by their variant tag
/// (the byte after the version), in `gongjian_sync::Message`'s order.
pub const FRAME_KINDS: [&str; 14] = [
    "hello",
    "reconcile",
    "want_records",
    "records",
    "want",
    "coming",
    "changes",
    "notify",
    "feed",
    "feed_records",
    "feed_changes",
    "feed_end",
    "mark",
    "other",
];

/// The index in [`FRAME_KINDS`] of a frame (`first`: a stream's first).
pub fn frame_kind(bytes: &[u8], first: bool) -> usize {
    if first {
        return 0;
    }
    match (bytes.first(), bytes.get(1)) {
        (Some(&gongjian_sync::VERSION), Some(&tag)) if (tag as usize) < FRAME_KINDS.len() - 2 => {
            tag as usize + 1
        }
        _ => FRAME_KINDS.len() - 1,
    }
}

impl Traffic {
    /// Counts a frame of `len` bytes (its length prefix included).
    pub fn count(&self, bytes: &[u8], first: bool, received: bool) {
        use std::sync::atomic::Ordering::Relaxed;
        let n = bytes.len() as u64 + 4;
        let k = frame_kind(bytes, first);
        if received {
            self.bytes_in.fetch_add(n, Relaxed);
            self.frames_in.fetch_add(1, Relaxed);
            self.kind_in[k].fetch_add(n, Relaxed);
        } else {
            self.bytes_out.fetch_add(n, Relaxed);
            self.frames_out.fetch_add(1, Relaxed);
            self.kind_out[k].fetch_add(n, Relaxed);
        }
    }
}

pub static TRAFFIC: Traffic = Traffic {
    bytes_in: std::sync::atomic::AtomicU64::new(0),
    bytes_out: std::sync::atomic::AtomicU64::new(0),
    frames_in: std::sync::atomic::AtomicU64::new(0),
    frames_out: std::sync::atomic::AtomicU64::new(0),
    sessions: std::sync::atomic::AtomicU64::new(0),
    kind_in: [const { std::sync::atomic::AtomicU64::new(0) }; FRAME_KINDS.len()],
    kind_out: [const { std::sync::atomic::AtomicU64::new(0) }; FRAME_KINDS.len()],
};
