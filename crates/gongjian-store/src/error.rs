use std::path::PathBuf;

/// Errors of the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "{path}: the store is open in another process (is `gongjian run` using this data dir?)"
    )]
    Locked { path: PathBuf },
    #[error("{path}: no store here (run `gongjian init` first)")]
    Missing { path: PathBuf },
    #[error("rocksdb: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error("stored value in {cf} is corrupt: {reason}")]
    Corrupt { cf: &'static str, reason: String },
    #[error("unknown value version {version} in {cf} (written by a newer gongjian?)")]
    Version { cf: &'static str, version: u8 },
    #[error("the store's writer has stopped")]
    Closed,
}

impl StoreError {
    /// Whether the error says stored bytes are damaged (a checksum or a
    /// value that does not decode), not that reading failed for a while
    /// (IO, a closed writer) or that a newer build wrote the value.
    pub fn is_corruption(&self) -> bool {
        match self {
            StoreError::Corrupt { .. } => true,
            StoreError::Rocks(e) => e.kind() == rocksdb::ErrorKind::Corruption,
            _ => false,
        }
    }
}
