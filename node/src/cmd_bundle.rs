//! `bundle state | export | import`: sneakernet for offices whose network is
//! down for days (PROTOCOL.md §10).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongjian_engine::{Bundle, BundleError, MAX_BUNDLE_BYTES, PeerState};
use gongjian_identity::UnitId;
use serde_json::json;

use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};
use crate::node::{now, open};

#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Write what this node holds (record hashes, version vectors) to a file,
    /// so another node can export only what this one lacks.
    State {
        #[arg(long)]
        data_dir: PathBuf,
        /// The unit that will export for this node: only what it may see is
        /// listed, so the file reveals nothing outside its audience.
        #[arg(long = "for")]
        for_unit: String,
        #[arg(long)]
        out: PathBuf,
    },
    /// Write the signed records and changes a unit is entitled to.
    Export {
        #[arg(long)]
        data_dir: PathBuf,
        /// The unit the bundle is for (default: this node's own unit).
        /// Required with `--have`: an unsigned state file never decides
        /// who receives what.
        #[arg(long = "for")]
        for_unit: Option<String>,
        /// A file written by `bundle state` on the receiving node: only what
        /// it lacks is exported.
        #[arg(long)]
        have: Option<PathBuf>,
        #[arg(long)]
        out: PathBuf,
    },
    /// Check a bundle whole (signature, sender, every record and change)
    /// and import it; a tampered or foreign bundle changes nothing.
    Import {
        #[arg(long)]
        data_dir: PathBuf,
        file: PathBuf,
    },
}

fn bundle_exit(e: BundleError) -> anyhow::Error {
    let exit = match &e {
        BundleError::NotABundle { .. }
        | BundleError::Version { .. }
        | BundleError::Malformed(_)
        | BundleError::WrongUnit { .. } => Exit::BadInput,
        BundleError::BadSignature
        | BundleError::Foreign { .. }
        | BundleError::WrongSender { .. }
        | BundleError::BadRecord { .. }
        | BundleError::BadChange { .. } => Exit::Untrusted,
        BundleError::Engine(_) | BundleError::Scratch(_) => Exit::Failure,
    };
    anyhow::Error::new(e).context(exit)
}

/// Writes `bytes` to `path` durably: a temporary file beside it, synced,
/// then renamed over.
fn write_durably(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let name = path
        .file_name()
        .with_context(|| format!("{}: not a file path", path.display()))
        .code(Exit::BadInput)?;
    let tmp = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let mut f = std::fs::File::create(&tmp)
        .with_context(|| format!("creating {}", tmp.display()))
        .code(Exit::Failure)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", tmp.display()))
        .code(Exit::Failure)?;
    std::fs::rename(&tmp, path)
        .with_context(|| format!("renaming to {}", path.display()))
        .code(Exit::Failure)?;
    Ok(())
}

fn read_capped(path: &Path, what: &str) -> anyhow::Result<Vec<u8>> {
    use std::io::Read;
    let f = std::fs::File::open(path)
        .with_context(|| format!("{what} {}", path.display()))
        .code(Exit::BadInput)?;
    let meta = f
        .metadata()
        .with_context(|| format!("{what} {}", path.display()))
        .code(Exit::BadInput)?;
    if !meta.is_file() {
        return bail(
            Exit::BadInput,
            format!("{what} {}: not a regular file", path.display()),
        );
    }
    let mut bytes = Vec::new();
    f.take(MAX_BUNDLE_BYTES + 1)
        .read_to_end(&mut bytes)
        .with_context(|| format!("reading {what} {}", path.display()))
        .code(Exit::BadInput)?;
    let len = bytes.len() as u64;
    if len > MAX_BUNDLE_BYTES {
        return bail(
            Exit::BadInput,
            format!(
                "{what} {}: {len} bytes, over the limit of {MAX_BUNDLE_BYTES}",
                path.display()
            ),
        );
    }
    Ok(bytes)
}

pub fn run(c: BundleCommand) -> anyhow::Result<()> {
    match c {
        BundleCommand::State {
            data_dir,
            for_unit,
            out,
        } => {
            let o = open(&DataDir(data_dir))?;
            let exporter: UnitId = for_unit.parse().context("--for").code(Exit::BadInput)?;
            let state = o.replica.peer_state(&exporter).code(Exit::Failure)?;
            write_durably(&out, &state.encode())?;
            println!(
                "{}",
                json!({
                    "unit": o.checked.unit.to_string(),
                    "records": state.records.len(),
                    "documents": state.docs.len(),
                    "out": out.display().to_string(),
                })
            );
            Ok(())
        }
        BundleCommand::Export {
            data_dir,
            for_unit,
            have,
            out,
        } => {
            let o = open(&DataDir(data_dir))?;
            let have = have
                .map(|p| {
                    let bytes = read_capped(&p, "--have")?;
                    PeerState::decode(&bytes)
                        .map_err(bundle_exit)
                        .with_context(|| format!("--have {}", p.display()))
                })
                .transpose()?;
            let for_unit: Option<UnitId> = for_unit
                .map(|u| u.parse().context("--for").code(Exit::BadInput))
                .transpose()?;
            let made_for = match (for_unit, have.as_ref().map(|h| h.unit)) {
                (Some(f), Some(Some(h))) if f != h => {
                    return bail(
                        Exit::BadInput,
                        format!("--for {f}, but the --have file is of unit {h}"),
                    );
                }
                (Some(f), _) => f,
                (None, Some(_)) => {
                    return bail(
                        Exit::BadInput,
                        "--have needs --for UNIT (the unit it is from)",
                    );
                }
                (None, None) => o.checked.unit,
            };
            if o.replica.trust().unit(&made_for).is_none() {
                return bail(
                    Exit::BadInput,
                    format!("--for {made_for}: no such unit is known to this node"),
                );
            }
            let (bytes, summary) = o
                .replica
                .export_bundle(made_for, have.as_ref(), now())
                .map_err(bundle_exit)?;
            write_durably(&out, &bytes)?;
            let mut v = serde_json::to_value(&summary)?;
            v["out"] = json!(out.display().to_string());
            println!("{v}");
            Ok(())
        }
        BundleCommand::Import { data_dir, file } => {
            let dir = DataDir(data_dir);
            let bytes = read_capped(&file, "bundle")?;
            let bundle = Bundle::parse(&bytes)
                .map_err(bundle_exit)
                .with_context(|| format!("refused {}, nothing imported", file.display()))?;
            let mut o = open(&dir)?;
            // The store is locked by this process: any scratch copy left by
            // an import that was killed is stale.
            for e in std::fs::read_dir(&dir.0).into_iter().flatten().flatten() {
                if e.file_name()
                    .to_string_lossy()
                    .starts_with("import-scratch-")
                {
                    std::fs::remove_dir_all(e.path())
                        .with_context(|| format!("removing {}", e.path().display()))
                        .code(Exit::Failure)?;
                }
            }
            let scratch = dir.0.join(format!("import-scratch-{}", std::process::id()));
            let summary = o
                .replica
                .import_bundle(&bundle, &scratch, now())
                .map_err(bundle_exit)
                .with_context(|| format!("refused {}, nothing imported", file.display()))?;
            println!("{}", serde_json::to_string(&summary)?);
            Ok(())
        }
    }
}
