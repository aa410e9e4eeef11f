use std::path::PathBuf;

/// Why a byte string is not a valid record, change envelope or key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("input is {len} bytes, more than the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("input ends early: needed {needed} more bytes at offset {offset}")]
    Truncated { offset: usize, needed: usize },
    #[error("{extra} trailing bytes after the end of the encoding")]
    Trailing { extra: usize },
    #[error("unknown encoding version {0}")]
    Version(u8),
    #[error("unknown signature algorithm {0}")]
    Algorithm(u8),
    #[error("unknown record kind {0}")]
    RecordKind(u8),
    #[error("unknown flags {0:#04x}")]
    Flags(u8),
    #[error("not an automerge change chunk: {0}")]
    Chunk(&'static str),
    #[error("compressed automerge chunks are refused (decompression could be unbounded)")]
    CompressedChunk,
    #[error("chunk checksum {claimed} does not match its content {computed}")]
    Checksum { claimed: String, computed: String },
    #[error("actor id is {0} bytes; gongjian actors are 36 (32-byte key + 4-byte epoch)")]
    ActorLength(usize),
    #[error("a change may have at most {max} dependencies, this one has {count}")]
    TooManyDeps { count: u64, max: usize },
    #[error("seq must start at 1, got 0")]
    SeqZero,
    #[error("record body does not decode as {kind}: {reason}")]
    Body { kind: &'static str, reason: String },
    #[error("the key is not a valid ed25519 point or is of small order (weak)")]
    WeakKey,
    #[error("unit id: {0}")]
    Unit(#[from] UnitIdError),
}

/// Why a signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureFailure {
    #[error("signature does not verify under the signer's key")]
    Invalid,
    #[error("the signer's key is weak (small order)")]
    WeakKey,
    #[error("the change's actor key is not the key that signed it")]
    ActorNotSigner,
    #[error("the change carries no signature of its own")]
    Unsigned,
}

/// Why a text key could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("expected `ed25519:` followed by 64 hex digits")]
    Format,
    #[error("the key is not a valid ed25519 point or is of small order (weak)")]
    Weak,
}

/// Errors reading or writing a secret key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyFileError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path}: mode {mode:o} lets group or others read the secret key; run `chmod 600 {path}`"
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("{path}: not a gongjian secret key file ({reason})")]
    Format { path: PathBuf, reason: &'static str },
    #[error("{path} already exists; refusing to overwrite a key")]
    Exists { path: PathBuf },
}

/// Why a unit id is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UnitIdError {
    #[error("`{0}` is neither a 12-digit division code nor an 18-character social credit code")]
    Shape(String),
    #[error("`{id}`: check character should be `{expected}`")]
    CheckChar { id: String, expected: char },
    #[error("`{id}`: character `{ch}` is not allowed in a unified social credit code")]
    CreditChar { id: String, ch: char },
    #[error("`{0}`: division code is all zeros")]
    Zero(String),
    #[error("`{id}` is not the code of a {kind}")]
    KindMismatch { id: String, kind: &'static str },
    #[error("`{child}` cannot be a child of `{parent}`: {reason}")]
    Parent {
        child: String,
        parent: String,
        reason: &'static str,
    },
    #[error("unknown unit kind `{0}` (district, street, community, resident)")]
    Kind(String),
}
