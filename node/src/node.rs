//! Opening a data dir's store and replica for a command.

use anyhow::Context;
use gongjian_engine::{EngineError, LocalIdentity, Replica};
use gongjian_identity::{DocId, DocType, UnitId};
use gongjian_store::{Store, StoreError};

use crate::config::{Checked, DataDir};
use crate::exit::{Coded, Exit};

/// Unix seconds, the same clock as the daemon's (`GONGJIAN_FAKE_NOW`
/// overrides it).
pub fn now() -> u64 {
    gongjian_net::now_secs()
}

/// An opened node: its config, its replica, its data dir.
#[derive(Debug)]
pub struct Opened {
    pub dir: DataDir,
    pub checked: Checked,
    pub replica: Replica,
}

pub fn open_store(dir: &DataDir) -> anyhow::Result<Store> {
    Store::open(&dir.db()).map_err(|e| {
        let exit = match e {
            StoreError::Locked { .. } => Exit::Locked,
            StoreError::Missing { .. } => Exit::DataDir,
            _ => Exit::Failure,
        };
        anyhow::Error::new(e).context(exit)
    })
}

pub fn open(dir: &DataDir) -> anyhow::Result<Opened> {
    let (_, checked) = dir.load_config()?;
    let secret = dir.secret()?;
    let store = open_store(dir)?;
    let replica = Replica::open(
        store,
        checked.trust_root,
        Some(LocalIdentity {
            secret,
            unit: checked.unit,
        }),
    )
    .context("opening the replica")
    .code(Exit::Failure)?;
    Ok(Opened {
        dir: dir.clone(),
        checked,
        replica,
    })
}

/// This unit's document of `doc_type` (the first by id), created on first
/// use.
pub fn own_doc(r: &mut Replica, unit: &UnitId, doc_type: DocType) -> Result<DocId, EngineError> {
    let mut docs = r.documents_of(unit, doc_type);
    docs.sort();
    match docs.first() {
        Some(d) => Ok(*d),
        None => r.create_document(doc_type, now()),
    }
}
