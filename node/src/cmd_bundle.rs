//! `bundle state | export | import`: sneakernet for offices whose network is
//! down for days (PROTOCOL.md §10).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongjian_engine::{Bundle, BundleError, MAX_BUNDLE_BYTES, PeerState};
use gongjian_identity::UnitId;
use serde_json::json;

use axum::http::Method;

use crate::client::{Client, Send, enc};
use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};

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
        BundleError::Engine(_) | BundleError::Scratch(_) | BundleError::TooLarge { .. } => {
            Exit::Failure
        }
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

/// A bundle request through the API (to the daemon when it runs).
fn client(data_dir: PathBuf) -> anyhow::Result<Client> {
    Client::connect(&DataDir(data_dir))
}

pub fn run(c: BundleCommand) -> anyhow::Result<()> {
    match c {
        BundleCommand::State {
            data_dir,
            for_unit,
            out,
        } => {
            let exporter: UnitId = for_unit.parse().context("--for").code(Exit::BadInput)?;
            let client = client(data_dir)?;
            let bytes = client.bytes(
                Method::GET,
                &format!("/v1/bundles/state?for={}", enc(exporter.as_str())),
                Send::None,
            );
            client.close();
            let bytes = bytes?;
            let state = PeerState::decode(&bytes).map_err(bundle_exit)?;
            write_durably(&out, &bytes)?;
            println!(
                "{}",
                json!({
                    "unit": state.unit.map(|u| u.to_string()),
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
            let have = have
                .map(|p| {
                    let bytes = read_capped(&p, "--have")?;
                    PeerState::decode(&bytes)
                        .map_err(bundle_exit)
                        .with_context(|| format!("--have {}", p.display()))?;
                    Ok::<_, anyhow::Error>(bytes)
                })
                .transpose()?;
            if have.is_some() && for_unit.is_none() {
                return bail(
                    Exit::BadInput,
                    "--have needs --for UNIT (the unit it is from)",
                );
            }
            let for_unit: Option<UnitId> = for_unit
                .map(|u| u.parse().context("--for").code(Exit::BadInput))
                .transpose()?;
            let path = match for_unit {
                Some(u) => format!("/v1/bundles/export?for={}", enc(u.as_str())),
                None => "/v1/bundles/export".to_owned(),
            };
            let client = client(data_dir)?;
            let res = client.bytes_with_summary(
                Method::POST,
                &path,
                have.map(Send::Bytes).unwrap_or(Send::None),
            );
            client.close();
            let (bytes, summary) = res?;
            write_durably(&out, &bytes)?;
            let mut v = summary.unwrap_or_else(|| json!({}));
            v["out"] = json!(out.display().to_string());
            v["bytes"] = json!(bytes.len());
            println!("{v}");
            Ok(())
        }
        BundleCommand::Import { data_dir, file } => {
            let bytes = read_capped(&file, "bundle")?;
            // Refused here, before the store is touched, if it is not a
            // bundle or its signature fails.
            Bundle::parse(&bytes)
                .map_err(bundle_exit)
                .with_context(|| format!("refused {}, nothing imported", file.display()))?;
            let client = client(data_dir)?;
            let res = client.json(Method::POST, "/v1/bundles/import", Send::Bytes(bytes));
            client.close();
            let summary = res.map_err(|e| {
                let refused = matches!(
                    e.downcast_ref::<Exit>(),
                    Some(Exit::Untrusted | Exit::BadInput | Exit::Forbidden)
                );
                if refused {
                    e.context(format!("refused {}, nothing imported", file.display()))
                } else {
                    e.context(format!(
                        "importing {} failed part way: what was stored is verified; import the file again to complete it",
                        file.display()
                    ))
                }
            })?;
            println!("{summary}");
            Ok(())
        }
    }
}
