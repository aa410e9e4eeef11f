//! `demo generate`: a district-scale data set (`crates/gongjian-gen`,
//! shaped by DOMAIN.md's figures) written as a new district node's data
//! directory, ready for `gongjian run`: every unit's signed records and
//! changes go through the node's real ingest (verify, acceptance rule,
//! apply, store), as if synced.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use gongjian_gen::{Profile, generate};
use serde_json::json;

use crate::config::{Config, DataDir};
use crate::exit::{Coded, Exit, bail};
use crate::node::{now, open};

#[derive(Debug, clap::Subcommand)]
pub enum DemoCommand {
    /// Generate a district (DOMAIN.md's Gulou figures, or a multiple) into a
    /// new district data directory.
    Generate(GenerateArgs),
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    /// district (Gulou: 13 streets, 120 communities, 540 resident units …)
    /// or small (one street).
    #[arg(long, default_value = "district")]
    profile: String,
    /// The same seed gives the same district, byte for byte.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Multiplies every figure (10 is a large city).
    #[arg(long, default_value_t = 1.0)]
    scale: f64,
    /// The district node's data directory to create.
    #[arg(long)]
    out: PathBuf,
    /// HTTP API address of the node.
    #[arg(long, default_value = "127.0.0.1:4711")]
    api: String,
    /// libp2p listen address; repeat for several.
    #[arg(long)]
    listen: Vec<String>,
    /// Print the summary as JSON.
    #[arg(long)]
    json: bool,
}

/// Changes ingested per call: one batch of verification and one synced
/// write each.
const INGEST_BATCH: usize = 4096;

pub fn run(cmd: DemoCommand) -> anyhow::Result<()> {
    match cmd {
        DemoCommand::Generate(a) => generate_dir(a),
    }
}

fn generate_dir(a: GenerateArgs) -> anyhow::Result<()> {
    let dir = DataDir(a.out.clone());
    if dir.config().exists() {
        return bail(
            Exit::DataDir,
            format!("{}: already initialised", a.out.display()),
        );
    }
    let Some(profile) = Profile::named(&a.profile) else {
        return bail(
            Exit::BadInput,
            format!("--profile: `{}` is not one of district, small", a.profile),
        );
    };
    if !(a.scale > 0.0 && a.scale <= 100.0) {
        return bail(
            Exit::BadInput,
            format!("--scale: {} is not in (0, 100]", a.scale),
        );
    }
    let profile = profile.scaled(a.scale);
    let t0 = Instant::now();
    let data = generate(&profile, a.seed, now())
        .context("generating the district")
        .code(Exit::Failure)?;
    let generated_ms = t0.elapsed().as_millis();
    let district = &data.units[0];
    let listen = if a.listen.is_empty() {
        vec!["/ip4/127.0.0.1/tcp/4710".to_owned()]
    } else {
        a.listen
    };
    let config = Config {
        unit: district.id.to_string(),
        kind: "district".into(),
        name: district.name.clone(),
        parent: None,
        trust_root: data.root.public().to_string(),
        listen,
        api: a.api,
        bootstrap: vec![],
        mdns: None,
        resync_secs: None,
        log_format: None,
    };
    config
        .check()
        .context("invalid arguments")
        .code(Exit::BadInput)?;
    crate::cmd_init::create_data_dir(&dir, &config, &district.secret, Some(&data.root))?;

    let t1 = Instant::now();
    let mut opened = open(&dir)?;
    opened
        .replica
        .insert_records(data.records.clone())
        .context("storing the certificates and geneses")
        .code(Exit::Failure)?;
    let mut batch: Vec<Vec<u8>> = Vec::with_capacity(INGEST_BATCH);
    let (mut accepted, mut refused) = (0usize, 0usize);
    let total = data.summary.changes;
    let mut flush = |batch: &mut Vec<Vec<u8>>| -> anyhow::Result<()> {
        if batch.is_empty() {
            return Ok(());
        }
        let report = opened
            .replica
            .ingest(std::mem::take(batch))
            .context("ingesting the generated changes")
            .code(Exit::Failure)?;
        accepted += report.accepted.len();
        refused += report.invalid.len() + report.rejected.len() + report.pending.len();
        if !a.json {
            eprint!("\r{accepted} / {total} changes stored");
        }
        Ok(())
    };
    for doc in &data.docs {
        if batch.len() + doc.changes.len() > INGEST_BATCH {
            flush(&mut batch)?;
        }
        batch.extend(doc.changes.iter().map(|c| c.encode()));
    }
    flush(&mut batch)?;
    if !a.json {
        eprintln!();
    }
    let ingest_ms = t1.elapsed().as_millis();
    if refused > 0 {
        return bail(
            Exit::Failure,
            format!("{refused} generated changes were refused: a generator bug"),
        );
    }
    let out = json!({
        "data_dir": a.out,
        "unit": district.id,
        "profile": a.profile,
        "scale": a.scale,
        "seed": a.seed,
        "summary": data.summary,
        "generate_ms": generated_ms,
        "ingest_ms": ingest_ms,
        "changes_per_second": (accepted as f64 / (ingest_ms.max(1) as f64 / 1000.0)).round(),
    });
    if a.json {
        println!("{out}");
    } else {
        let s = &data.summary;
        println!(
            "{}: {} units ({} streets, {} communities, {} resident units), {} grids, {} agreements, {} documents, {} signed changes ({} bytes)",
            a.out.display(),
            data.units.len(),
            s.units.get("street").copied().unwrap_or(0),
            s.units.get("community").copied().unwrap_or(0),
            s.units.get("resident").copied().unwrap_or(0),
            s.grids,
            s.agreements,
            s.documents,
            s.changes,
            s.change_bytes
        );
        println!(
            "generated in {generated_ms} ms; verified, accepted and stored in {ingest_ms} ms ({} changes/s)",
            out["changes_per_second"]
        );
        println!(
            "run it: gongjian run --data-dir {}   (API token in {})",
            a.out.display(),
            dir.api_token().display()
        );
    }
    Ok(())
}
