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
    /// The same district as street hubs, for a cold sync: one data
    /// directory per street holding what that street may see
    /// (`OUT/hub-<street>`), and a district node that holds nothing but its
    /// own certificate and dials every hub (`OUT/district`).
    Hubs(HubsArgs),
}

/// Which district to generate: `demo generate` and `demo hubs` alike.
#[derive(Debug, clap::Args)]
pub struct DistrictArgs {
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
}

impl DistrictArgs {
    /// The named profile at the given scale, or a clear error.
    fn profile(&self) -> anyhow::Result<Profile> {
        let Some(profile) = Profile::named(&self.profile) else {
            return bail(
                Exit::BadInput,
                format!(
                    "--profile: `{}` is not one of district, small",
                    self.profile
                ),
            );
        };
        if !(self.scale > 0.0 && self.scale <= 100.0) {
            return bail(
                Exit::BadInput,
                format!("--scale: {} is not in (0, 100]", self.scale),
            );
        }
        Ok(profile.scaled(self.scale))
    }
}

#[derive(Debug, clap::Args)]
pub struct HubsArgs {
    #[command(flatten)]
    district: DistrictArgs,
    /// The directory to create, holding the nodes' data directories.
    #[arg(long)]
    out: PathBuf,
    /// TCP port of the district node on 127.0.0.1; the hubs listen on the
    /// ports after it.
    #[arg(long, default_value_t = 47300)]
    port: u16,
    /// Reconnect after an outage instead of a cold sync: the district
    /// starts holding the whole district, and the hubs hold besides one
    /// later change to this fraction of the documents (0.01 is 1%).
    #[arg(long, value_name = "FRACTION")]
    later: Option<f64>,
}

#[derive(Debug, clap::Args)]
pub struct GenerateArgs {
    #[command(flatten)]
    district: DistrictArgs,
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
        DemoCommand::Hubs(a) => hubs(a),
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
    let profile = a.district.profile()?;
    let t0 = Instant::now();
    let data = generate(&profile, a.district.seed, now())
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
        scrub_docs_per_second: None,
        view: None,
        settle_changes_per_second: None,
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
    let (mut accepted, mut refused) = (0usize, 0usize);
    let total = data.summary.changes;
    for batch in gongjian_gen::wire_batches(&data.docs, INGEST_BATCH) {
        let report = opened
            .replica
            .ingest(batch)
            .context("ingesting the generated changes")
            .code(Exit::Failure)?;
        accepted += report.accepted.len();
        refused += report.invalid.len() + report.rejected.len() + report.pending.len();
        if !a.json {
            eprint!("\r{accepted} / {total} changes stored");
        }
    }
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
        "profile": a.district.profile,
        "scale": a.district.scale,
        "seed": a.district.seed,
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

/// Stores `changes` through the replica's real ingest, in batches.
fn ingest_all(
    replica: &mut gongjian_engine::Replica,
    docs: &[&gongjian_gen::Doc],
) -> anyhow::Result<usize> {
    let mut accepted = 0;
    for batch in gongjian_gen::wire_batches(docs.iter().copied(), INGEST_BATCH) {
        accepted += replica
            .ingest(batch)
            .context("ingesting")
            .code(Exit::Failure)?
            .accepted
            .len();
    }
    Ok(accepted)
}

fn hubs(a: HubsArgs) -> anyhow::Result<()> {
    use gongjian_identity::{DocId, RecordKind, UnitKind};
    let profile = a.district.profile()?;
    if a.out.exists() {
        return bail(
            Exit::DataDir,
            format!("{}: exists already", a.out.display()),
        );
    }
    if let Some(f) = a.later
        && !(f > 0.0 && f <= 1.0)
    {
        return bail(Exit::BadInput, format!("--later: {f} is not in (0, 1]"));
    }
    let data = generate(&profile, a.district.seed, now())
        .context("generating the district")
        .code(Exit::Failure)?;
    let later = match a.later {
        Some(f) => {
            let n = ((data.docs.len() as f64 * f).round() as usize).max(1);
            gongjian_gen::later_edits(&data, n, now() + 1)
                .context("making the later edits")
                .code(Exit::Failure)?
        }
        None => Vec::new(),
    };
    let later_bytes: usize = later
        .iter()
        .flat_map(|d| &d.changes)
        .map(|c| c.encode().len())
        .sum();
    let district = &data.units[0];
    let streets: Vec<&gongjian_gen::Unit> = data
        .units
        .iter()
        .filter(|u| u.kind == UnitKind::Street)
        .collect();
    let certificates: Vec<_> = data
        .records
        .iter()
        .filter(|r| r.kind() != RecordKind::Genesis)
        .cloned()
        .collect();
    let addr = |i: usize| format!("/ip4/127.0.0.1/tcp/{}", usize::from(a.port) + i);
    let config =
        |u: &gongjian_gen::Unit, kind: &str, listen: String, bootstrap: Vec<String>| Config {
            unit: u.id.to_string(),
            kind: kind.into(),
            name: u.name.clone(),
            parent: u.parent.map(|p| p.to_string()),
            trust_root: data.root.public().to_string(),
            listen: vec![listen],
            api: "127.0.0.1:0".into(),
            bootstrap,
            mdns: Some(false),
            resync_secs: None,
            scrub_docs_per_second: None,
            view: None,
            settle_changes_per_second: None,
            log_format: None,
        };
    // Every genesis, to learn each document's audience.
    let trust = {
        let mut all = gongjian_model::Membership::new(data.root.public());
        for rec in &data.records {
            if let Ok(v) = gongjian_model::verify_record(rec.clone()) {
                all.insert(v);
            }
        }
        all.evaluate()
    };
    let mut out = Vec::new();
    let mut marks = Vec::new();
    for (i, st) in streets.iter().enumerate() {
        let dir = DataDir(a.out.join(format!("hub-{}", st.id)));
        crate::cmd_init::create_data_dir(
            &dir,
            &config(st, "street", addr(i + 1), vec![]),
            &st.secret,
            None,
        )?;
        let mut opened = open(&dir)?;
        let r = &mut opened.replica;
        r.insert_records(certificates.clone())
            .context("storing the certificates")
            .code(Exit::Failure)?;
        // Only the documents this street may see.
        let visible: std::collections::BTreeSet<DocId> = data
            .docs
            .iter()
            .map(|d| d.id)
            .filter(|d| trust.may_see(&st.id, d))
            .collect();
        let geneses: Vec<_> = data
            .records
            .iter()
            .filter(|r| r.kind() == RecordKind::Genesis && visible.contains(&DocId(r.hash())))
            .cloned()
            .collect();
        r.insert_records(geneses)
            .context("storing the geneses")
            .code(Exit::Failure)?;
        let before: Vec<&gongjian_gen::Doc> = data
            .docs
            .iter()
            .filter(|d| visible.contains(&d.id))
            .collect();
        let after: Vec<&gongjian_gen::Doc> =
            later.iter().filter(|d| visible.contains(&d.id)).collect();
        let mut accepted = ingest_all(r, &before)?;
        // Where the hub's accept log stood when the district last synced
        // with it (the mark it took then, PROTOCOL.md §8.6).
        marks.push((
            st.secret.public(),
            r.store().store_id().code(Exit::Failure)?,
            r.store().log_head(),
        ));
        accepted += ingest_all(r, &after)?;
        let docs: Vec<&gongjian_gen::Doc> = before.into_iter().chain(after).collect();
        let changes: usize = docs.iter().map(|d| d.changes.len()).sum();
        if accepted != changes {
            return bail(
                Exit::Failure,
                format!(
                    "hub {}: {accepted} of {changes} changes accepted: a generator bug",
                    st.id
                ),
            );
        }
        out.push(json!({"unit": st.id, "dir": dir.0, "listen": addr(i + 1), "documents": docs.len(), "changes": changes}));
    }
    // The district starts with its own certificate only; the rest comes
    // from the hubs.
    let dir = DataDir(a.out.join("district"));
    let bootstrap = (1..=streets.len()).map(addr).collect();
    crate::cmd_init::create_data_dir(
        &dir,
        &config(district, "district", addr(0), bootstrap),
        &district.secret,
        Some(&data.root),
    )?;
    let mut opened = open(&dir)?;
    if later.is_empty() {
        opened
            .replica
            .insert_records(certificates.iter().take(1).cloned().collect())
            .context("storing the district's certificate")
            .code(Exit::Failure)?;
    } else {
        // Synced before the outage: everything but the later edits.
        opened
            .replica
            .insert_records(data.records.clone())
            .context("storing the records")
            .code(Exit::Failure)?;
        let all: Vec<&gongjian_gen::Doc> = data.docs.iter().collect();
        ingest_all(&mut opened.replica, &all)?;
        // And its place in each hub's accept log, as that sync left it.
        for (key, log, head) in &marks {
            gongjian_net::set_log_place(opened.replica.store(), key, *log, *head)
                .code(Exit::Failure)?;
        }
        // And each hub's place in the district's, as that sync left it.
        let (log, head) = (
            opened.replica.store().store_id().code(Exit::Failure)?,
            opened.replica.store().log_head(),
        );
        for st in &streets {
            let hub = open(&DataDir(a.out.join(format!("hub-{}", st.id))))?;
            gongjian_net::set_log_place(hub.replica.store(), &district.secret.public(), log, head)
                .code(Exit::Failure)?;
        }
    }
    drop(opened);
    println!(
        "{}",
        json!({
            "district": dir.0,
            "listen": addr(0),
            "documents": data.summary.documents,
            "changes": data.summary.changes,
            "change_bytes": data.summary.change_bytes,
            "records": data.records.len(),
            "later": {"documents": later.len(), "changes": later.len(), "change_bytes": later_bytes},
            "hubs": out,
        })
    );
    Ok(())
}
