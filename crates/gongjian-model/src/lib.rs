//! The meaning of gongjian's records: membership (who holds which key for
//! which unit), write rules, and the acceptance rule for signed changes, plus
//! the typed documents over automerge.
//!
//! Owns: the one acceptance rule of `PROTOCOL.md`, as pure functions of the
//! signed records held. Must never: read a clock to decide acceptance, depend
//! on arrival order, do IO, or hand an unverified change to automerge.

mod accept;
mod acts;
mod agreements;
mod apply;
mod grids;
mod lists;
mod membership;
mod meta;
mod needs;
mod verified;

pub use accept::{ChangeMeta, DocVerdicts, Rejection, Verdict, evaluate_document};
pub use acts::{
    Act, ActError, ActKind, ActsDoc, Target, acts_on, problem_handlings, whistle_responders,
};
pub use agreements::{
    AgreementDoc, AgreementError, AgreementState, AgreementStatus, Terms, agreement_parties,
    agreement_parts, agreement_parts_digest, agreement_status,
};
pub use apply::{ApplyOutcome, apply_accepted};
pub use grids::{Grid, GridCounts, GridError, GridLevel, GridNode, GridRef, GridsDoc, grid_tree};
pub use lists::{
    Escalation, Item, ItemError, ItemFields, ItemStatus, ListDoc, ListKind, MAX_PERSON,
    ProblemLevel,
};
pub use membership::{AdmissionError, Audience, CertChainError, Membership, Trust, UnitInfo};
pub use meta::{Fields, RecordMeta};
pub use needs::{Need, NeedError, NeedStatus, NeedsDoc};
pub use verified::{Body, RecordError, VerifiedRecord, verify_record, verify_records};
