//! `backup`, `restore`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongjian_store::Store;
use serde_json::json;

use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};
use crate::node::{now, open_store};

#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// A directory that does not exist yet.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// A directory written by `gongjian backup`.
    #[arg(long)]
    from: PathBuf,
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    #[arg(long, env = "GONGJIAN_DATA_DIR")]
    data_dir: PathBuf,
    /// Drop the documents found corrupt (their genesis stays), so the next
    /// sync fetches them again from peers. A document only this node holds
    /// comes back only from a backup.
    #[arg(long)]
    repair: bool,
}

/// Reads back and checks everything in the store (the daemon stopped):
/// prints the report as JSON; exit 8 if anything is wrong (after a repair,
/// the problems it found and the documents it dropped).
pub fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir);
    let mut opened = match crate::node::open(&dir) {
        Ok(o) => o,
        // RocksDB checks what it reads at open (manifest, WAL, the
        // records); corruption there is this command's finding too.
        Err(e) if format!("{e:#}").to_lowercase().contains("corrupt") => {
            return bail(Exit::Corrupt, format!("the store does not open: {e:#}"));
        }
        Err(e) => return Err(e),
    };
    let report = opened
        .replica
        .scrub(a.repair)
        .context("verifying the store")
        .code(Exit::Failure)?;
    println!(
        "{}",
        serde_json::to_string_pretty(&report).unwrap_or_default()
    );
    if report.is_clean() {
        Ok(())
    } else if a.repair {
        bail(
            Exit::Corrupt,
            format!(
                "{} problems; {} documents dropped, to be fetched again from peers",
                report.problems.len(),
                report.dropped.len()
            ),
        )
    } else {
        bail(
            Exit::Corrupt,
            format!(
                "{} problems (`--repair` drops the corrupt documents, to be fetched again from peers)",
                report.problems.len()
            ),
        )
    }
}

pub fn backup(a: BackupArgs) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir);
    dir.load_config()?;
    if a.out.exists() {
        return bail(
            Exit::BadInput,
            format!("--out {}: already exists", a.out.display()),
        );
    }
    // Through the API: the running daemon's (a live checkpoint), or the
    // same API in this command on the store it opens.
    let out = std::path::absolute(&a.out)
        .with_context(|| a.out.display().to_string())
        .code(Exit::BadInput)?;
    let client = crate::client::Client::connect(&dir)?;
    let v = client.json(
        reqwest::Method::POST,
        "/v1/backup",
        crate::client::Send::Json(json!({"out": out.display().to_string()})),
    );
    client.close();
    println!("{}", v?);
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

pub fn restore(a: RestoreArgs) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir);
    dir.load_config()?;
    // Check the backup opens before touching the live store.
    Store::open(&a.from)
        .with_context(|| format!("--from {}: not a usable backup", a.from.display()))
        .code(Exit::BadInput)?;
    // Holding the live store proves no daemon uses it while we swap; its
    // epoch is one the restored node must move past.
    let live = open_store(&dir)?;
    let live_epoch = live.epoch().code(Exit::Failure)?;
    drop(live);
    // Prepare the copy completely, new epoch included, before it replaces
    // the live store: a crash at any point leaves either the old store or
    // the restored one on a new epoch, never the backup's old epoch.
    let db = dir.db();
    let staging = dir.0.join("db.restoring");
    if staging.exists() {
        fs::remove_dir_all(&staging)
            .with_context(|| staging.display().to_string())
            .code(Exit::Failure)?;
    }
    copy_dir(&a.from, &staging)
        .with_context(|| staging.display().to_string())
        .code(Exit::Failure)?;
    let epoch = {
        let copy = Store::open(&staging).code(Exit::Failure)?;
        // A restored node must never sign (actor, seq) pairs it signed after
        // the backup was taken: it moves to a new epoch, hence a new actor.
        copy.bump_epoch_past(live_epoch, now())
            .code(Exit::Failure)?
    };
    let aside = dir.0.join(format!("db.replaced-{}", now()));
    fs::rename(&db, &aside)
        .with_context(|| db.display().to_string())
        .code(Exit::Failure)?;
    fs::rename(&staging, &db)
        .with_context(|| db.display().to_string())
        .code(Exit::Failure)?;
    println!(
        "{}",
        json!({"restored": a.from.display().to_string(), "epoch": epoch, "previous_store": aside.display().to_string()})
    );
    Ok(())
}
