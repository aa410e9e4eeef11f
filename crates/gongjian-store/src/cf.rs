/// The column families. Keys are binary and big-endian (`ARCHITECTURE.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cf {
    /// Node-level values: key = one byte ([`crate::store::MetaKey`]).
    Meta,
    /// Accepted signed changes: key = doc (32) ‖ change hash (32). The
    /// same chunk signed for two documents is two entries.
    Changes,
    /// key = doc (32) ‖ actor (36) ‖ seq (8, BE) → change hash (32).
    ChangeIndex,
    /// key = doc (32) → [`crate::DocMeta`].
    Docs,
    /// Membership records and geneses: key = record hash (32) → signed record.
    Records,
    /// Changes held but not accepted: key = doc (32) ‖ change hash (32).
    Quarantine,
    /// Per-peer sync progress: key = peer id bytes.
    Peers,
    /// Merged-view indexes (the view crate owns their layout).
    View,
    /// Documents whose accepted changes were stored but not yet applied to
    /// automerge (a node that defers application, PROTOCOL.md §4 rule 8):
    /// key = doc (32) → empty.
    Unapplied,
    /// The accept log, read by sync's feed (PROTOCOL.md §8.6): key = a
    /// sequence number (8, BE) counting every accepted change and record
    /// this store wrote, in commit order → the change's
    /// [`Cf::ChangeIndex`] key (76 bytes) or the record's hash (32).
    /// Written by the writer thread with the commit; a hint only (what it
    /// misses, a reconciliation finds).
    Log,
}

impl Cf {
    pub const ALL: [Cf; 10] = [
        Cf::Meta,
        Cf::Changes,
        Cf::ChangeIndex,
        Cf::Docs,
        Cf::Records,
        Cf::Quarantine,
        Cf::Peers,
        Cf::View,
        Cf::Unapplied,
        Cf::Log,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Cf::Meta => "meta",
            Cf::Changes => "changes",
            Cf::ChangeIndex => "change_index",
            Cf::Docs => "docs",
            Cf::Records => "records",
            Cf::Quarantine => "quarantine",
            Cf::Peers => "peers",
            Cf::View => "view",
            Cf::Unapplied => "unapplied",
            Cf::Log => "log",
        }
    }
}
