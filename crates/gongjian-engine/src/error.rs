use gongjian_identity::{DecodeError, Hash, SignatureFailure};
use gongjian_model::{CertChainError, NeedError, RecordError, Rejection};
use gongjian_store::StoreError;

/// Why a received change was refused before the acceptance rule (nothing of
/// it is stored).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InvalidChange {
    #[error("malformed change: {0}")]
    Decode(#[from] DecodeError),
    #[error("change {hash}: {failure}")]
    Signature {
        hash: Hash,
        failure: SignatureFailure,
    },
    #[error("change {hash}: author {author} is not a member of the federation")]
    UnknownAuthor { hash: Hash, author: String },
    #[error("change {hash}: no valid genesis of document {doc} is held (send the genesis first)")]
    UnknownDocument { hash: Hash, doc: String },
    #[error("change {hash} carries no signature and no signed change of its author vouches for it")]
    Unvouched { hash: Hash },
    #[error("change {hash}: quarantine of its document is full ({max} changes)")]
    QuarantineFull { hash: Hash, max: usize },
}

/// Errors of replica operations.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("store: {0}")]
    Store(#[from] StoreError),
    #[error("record refused: {0}")]
    Record(#[from] RecordError),
    #[error("this node's key is not admitted: {0}")]
    NotAdmitted(#[from] CertChainError),
    #[error(
        "record {hash}: signer {signer} is not a member of the federation (no chain to the pinned root)"
    )]
    NotMember { hash: Hash, signer: String },
    #[error("no document {0}")]
    UnknownDocument(String),
    #[error("this node holds no write key of document {0}'s unit")]
    NotWriter(String),
    #[error("{0}")]
    Need(#[from] NeedError),
    #[error("{0}")]
    Grid(#[from] gongjian_model::GridError),
    #[error("{0}")]
    Act(#[from] gongjian_model::ActError),
    #[error("{0}")]
    Agreement(#[from] gongjian_model::AgreementError),
    #[error("local change refused: {0}")]
    LocalRejected(Rejection),
    #[error("local change refused: {0}")]
    LocalInvalid(InvalidChange),
    #[error(
        "a {0} document names other parties only if it is an agreement, and an agreement names at least one other party, each once, not its owner"
    )]
    Parties(&'static str),
    #[error("this node has no secret key loaded")]
    NoSecret,
    #[error(
        "no new document is made while this node holds changes it wrote to document {0} without that document's genesis record (lost with damaged records): it may be this unit's own; records sync brings it back from a peer (or restore the records from a backup)"
    )]
    GenesisMissing(String),
}
