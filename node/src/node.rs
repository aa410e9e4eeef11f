//! Opening a data dir's store and replica for a command.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::Context;
use gongjian_engine::{LocalIdentity, Replica};
use gongjian_store::{Store, StoreError};

use crate::config::{Checked, DataDir};
use crate::exit::{Coded, Exit};

/// Unix seconds. `GONGJIAN_FAKE_NOW` overrides the clock (tests of expiry);
/// the clock only ever decides certificate validity at admission and local
/// writes, never what is accepted.
pub fn now() -> u64 {
    if let Some(t) = std::env::var("GONGJIAN_FAKE_NOW")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        return t;
    }
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
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
