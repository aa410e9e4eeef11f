//! Wire messages: one version byte, then the postcard encoding. Sizes are
//! checked before decoding, and counts after, against fixed caps.

use gongjian_identity::{ActorId, DocId, Hash};
use serde::{Deserialize, Serialize};

use crate::rbsr::{Range, Salt, SetId};

/// The libp2p protocol id; the version is part of it, so nodes of two
/// versions simply do not speak (and can be upgraded one office at a time
/// by serving both ids).
pub const PROTOCOL_ID: &str = "/gongjian/sync/6";
/// The first byte of every message.
pub const VERSION: u8 = 6;
/// No message is larger: a batch of changes is cut well below it.
pub const MAX_MESSAGE_BYTES: usize = 8 << 20;
/// Most hashes in one `WantRecords`, records in one `Records`, actors in
/// one version vector, changes in one `Changes`.
pub const MAX_LIST: usize = 4096;

/// One sync message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A step of set reconciliation; `round` increases by one each way, so
    /// a duplicated or stale step is recognised and dropped.
    Reconcile {
        set: SetId,
        /// Which reconciliation of this set in the session: the initiator
        /// opens each (re)sync with the next one, at round 0.
        epoch: u32,
        round: u32,
        /// The short ids' salt, drawn by the initiator for the epoch; the
        /// same in every step of it.
        salt: Salt,
        ranges: Vec<Range>,
    },
    /// Records the sender lacks, by hash.
    WantRecords { hashes: Vec<Hash> },
    /// Encoded signed records.
    Records { records: Vec<Vec<u8>> },
    /// "I hold `have` of `doc`: send what I lack." Per actor, the highest
    /// accepted seq and that change's hash, so the answerer sees a chain
    /// that is not its own (an equivocating actor, PROTOCOL.md §8.4).
    Want {
        doc: DocId,
        have: Vec<(ActorId, u64, Hash)>,
    },
    /// Announced before the changes answering a `Want` when they take more
    /// than one `Changes` or stop short (an answer of one complete batch
    /// goes without it); `complete` false: the answer stops short (changes of several actors
    /// interleave with no cut point below the batch cap), fetch again.
    Coming {
        doc: DocId,
        changes: u64,
        bytes: u64,
        complete: bool,
    },
    /// A batch of encoded signed changes of one document, in causal order,
    /// signed at the edges; `last` ends the answer to a `Want`.
    Changes {
        doc: DocId,
        changes: Vec<Vec<u8>>,
        last: bool,
    },
    /// Live push: the sender's state of `doc` changed.
    Notify { doc: DocId, state: [u8; 16] },
    /// Each side's first message: "send me what your accept log `.0` holds
    /// after number `.1`" (`None`: no place in the peer's log is known).
    /// Answered by `FeedRecords` and `FeedChanges`, then `FeedEnd`.
    Feed { from: Option<([u8; 8], u64)> },
    /// Records of a feed (encoded signed records, §2).
    FeedRecords { records: Vec<Vec<u8>> },
    /// Changes of a feed, of one document, in their compact form, causal
    /// order, signed at the edges (as `Changes`).
    FeedChanges { doc: DocId, changes: Vec<Vec<u8>> },
    /// The feed asked for by `Feed` is complete.
    FeedEnd,
    /// "My accept log `log` up to `at` is what we just reconciled, what
    /// came from you, or what I announced to you": sent once the documents
    /// reconciliation ended and nothing is awaited (PROTOCOL.md §8.6).
    Mark { log: [u8; 8], at: u64 },
}

impl Message {
    pub fn kind(&self) -> &'static str {
        match self {
            Message::Reconcile { .. } => "reconcile",
            Message::WantRecords { .. } => "want_records",
            Message::Records { .. } => "records",
            Message::Want { .. } => "want",
            Message::Coming { .. } => "coming",
            Message::Changes { .. } => "changes",
            Message::Notify { .. } => "notify",
            Message::Feed { .. } => "feed",
            Message::FeedEnd => "feed_end",
            Message::Mark { .. } => "mark",
            Message::FeedRecords { .. } => "feed_records",
            Message::FeedChanges { .. } => "feed_changes",
        }
    }
}

/// Why bytes are not a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("message of {len} bytes exceeds the {max}-byte cap")]
    TooLarge { len: usize, max: usize },
    #[error("empty message")]
    Empty,
    #[error("sync protocol version {0} is not supported (this node speaks {VERSION})")]
    Version(u8),
    #[error("malformed message: {0}")]
    Malformed(String),
    #[error("{what}: {len} entries exceed the cap of {max}")]
    TooMany {
        what: &'static str,
        len: usize,
        max: usize,
    },
}

pub fn encode(msg: &Message) -> Vec<u8> {
    let mut out = vec![VERSION];
    // Serialising plain data (no maps with non-string keys, no custom
    // serialisers that fail) into a Vec cannot fail.
    out.extend(postcard::to_stdvec(msg).expect("sync messages always serialise"));
    out
}

pub fn decode(bytes: &[u8]) -> Result<Message, DecodeError> {
    if bytes.len() > MAX_MESSAGE_BYTES {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_MESSAGE_BYTES,
        });
    }
    let (&version, body) = bytes.split_first().ok_or(DecodeError::Empty)?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let (msg, rest): (Message, &[u8]) =
        postcard::take_from_bytes(body).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::Malformed(format!(
            "{} trailing bytes",
            rest.len()
        )));
    }
    let check = |what: &'static str, len: usize| {
        if len > MAX_LIST {
            Err(DecodeError::TooMany {
                what,
                len,
                max: MAX_LIST,
            })
        } else {
            Ok(())
        }
    };
    match &msg {
        Message::WantRecords { hashes } => check("record hashes", hashes.len())?,
        Message::Records { records } => check("records", records.len())?,
        Message::Want { have, .. } => check("version vector", have.len())?,
        Message::Changes { changes, .. } => check("changes", changes.len())?,
        Message::FeedRecords { records } => check("records", records.len())?,
        Message::FeedChanges { changes, .. } => check("changes", changes.len())?,
        Message::Reconcile { .. }
        | Message::Coming { .. }
        | Message::Notify { .. }
        | Message::Feed { .. }
        | Message::FeedEnd
        | Message::Mark { .. } => {}
    }
    Ok(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_refusals() {
        let m = Message::Coming {
            doc: DocId(Hash([7; 32])),
            changes: 3,
            bytes: 900,
            complete: true,
        };
        assert_eq!(decode(&encode(&m)), Ok(m.clone()));
        let mut bad = encode(&m);
        bad[0] = 1;
        assert_eq!(decode(&bad), Err(DecodeError::Version(1)));
        let mut long = encode(&m);
        long.push(0);
        assert!(matches!(decode(&long), Err(DecodeError::Malformed(_))));
        assert_eq!(decode(&[]), Err(DecodeError::Empty));
        assert!(matches!(
            decode(&vec![1u8; MAX_MESSAGE_BYTES + 1]),
            Err(DecodeError::TooLarge { .. })
        ));
        // A length prefix announcing 2^32 records does not allocate them.
        let mut huge = vec![VERSION, 2];
        huge.extend([0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert!(matches!(decode(&huge), Err(DecodeError::Malformed(_))));
        let many = Message::WantRecords {
            hashes: vec![Hash([0; 32]); MAX_LIST + 1],
        };
        assert!(matches!(
            decode(&encode(&many)),
            Err(DecodeError::TooMany { .. })
        ));
    }
}
