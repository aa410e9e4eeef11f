//! Identity of gongjian: keys, unit ids, hashes, and the signed records that
//! everything else trusts (certificates, revocations, key records, geneses,
//! heads announcements, change envelopes).
//!
//! Owns: the byte encodings of `PROTOCOL.md`, signing and strict verification.
//! Must never: touch a database, a socket or a runtime; parse an automerge change
//! before its hash and signature are checked; accept a weak (small-order) key.

mod change;
mod encoding;
mod error;
mod hash;
mod key;
mod keyfile;
mod record;
mod records;
mod unit;
mod verify;

pub use change::{
    ActorId, ChangeHeader, MAX_CHANGE_BYTES, MAX_DEPS, SignedChange, change_signing_message,
};
pub use error::{DecodeError, KeyFileError, KeyParseError, SignatureFailure, UnitIdError};
pub use hash::{DocId, Hash};
pub use key::{ALG_ED25519, PublicKey, Secret, Signature};
pub use keyfile::{read_secret, write_secret};
pub use record::{MAX_RECORD_BYTES, RecordKind, SignedRecord};
pub use records::{
    Blinded, Certificate, CutEntry, DocType, Genesis, HeadsAnnouncement, KeyAdd, RecordBody,
    Recovery, Revocation, RevocationCut, RevocationTarget,
};
pub use unit::{UnitId, UnitKind};
pub use verify::{
    VerifyItem, on_two_cores, two_cores, verify_changes, verify_many, verify_on_one_core,
};
