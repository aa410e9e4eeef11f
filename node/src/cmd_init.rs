//! `init` and `id`.

use std::fs;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongjian_identity::{Certificate, PublicKey, RecordBody, Secret, UnitKind, write_secret};
use gongjian_store::Store;
use serde_json::json;

use crate::config::{Config, DataDir, write_config};
use crate::exit::{Coded, Exit, bail};
use crate::node::{now, open};

/// Validity of the certificate a district gives itself, in days.
const DISTRICT_CERT_DAYS: u64 = 3650;

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    #[arg(long)]
    data_dir: PathBuf,
    /// Unit id: 12-digit division code or 18-character social credit code.
    #[arg(long)]
    unit: String,
    /// district | street | community | resident
    #[arg(long)]
    kind: String,
    #[arg(long)]
    name: String,
    /// Parent unit id (every kind but district).
    #[arg(long)]
    parent: Option<String>,
    /// The district's root public key (every kind but district).
    #[arg(long)]
    trust_root: Option<String>,
    /// libp2p listen address; repeat for several.
    #[arg(long)]
    listen: Vec<String>,
    /// HTTP API address.
    #[arg(long, default_value = "127.0.0.1:4711")]
    api: String,
    /// A peer to dial at start; repeat for several.
    #[arg(long)]
    bootstrap: Vec<String>,
}

fn write_token(path: &Path) -> anyhow::Result<()> {
    let mut token = [0u8; 32];
    rand::fill(&mut token);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .with_context(|| path.display().to_string())?;
    writeln!(f, "{}", hex_encode(&token))?;
    Ok(())
}

fn hex_encode(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Writes a new data directory: the node key (and a district's root key),
/// the API token (0600), an empty store at a fresh epoch, then the config
/// last (its presence marks the directory initialised).
pub fn create_data_dir(
    dir: &DataDir,
    config: &Config,
    secret: &Secret,
    root_secret: Option<&Secret>,
) -> anyhow::Result<()> {
    fs::create_dir_all(&dir.0)
        .with_context(|| dir.0.display().to_string())
        .code(Exit::DataDir)?;
    write_secret(&dir.node_key(), secret).code(Exit::DataDir)?;
    if let Some(root) = root_secret {
        write_secret(&dir.root_key(), root).code(Exit::DataDir)?;
    }
    write_token(&dir.api_token()).code(Exit::DataDir)?;
    let store = Store::create(&dir.db()).code(Exit::Failure)?;
    store.bump_epoch(now()).code(Exit::Failure)?;
    drop(store);
    write_config(&dir.config(), config).code(Exit::Failure)?;
    Ok(())
}

pub fn init(a: InitArgs) -> anyhow::Result<()> {
    let dir = DataDir(a.data_dir.clone());
    if dir.config().exists() {
        return bail(
            Exit::DataDir,
            format!("{}: already initialised", a.data_dir.display()),
        );
    }
    let kind: UnitKind = a.kind.parse().context("--kind").code(Exit::BadInput)?;
    let root_secret = match (&a.trust_root, kind) {
        (None, UnitKind::District) => Some(Secret::generate()),
        (Some(_), _) => None,
        (None, _) => {
            return bail(
                Exit::BadInput,
                format!("--trust-root: a {kind} must pin the district's root key"),
            );
        }
    };
    let trust_root = match &root_secret {
        Some(s) => s.public().to_string(),
        None => a.trust_root.clone().unwrap_or_default(),
    };
    let listen = if a.listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/4710".to_owned(),
            "/ip4/0.0.0.0/udp/4710/quic-v1".to_owned(),
        ]
    } else {
        a.listen
    };
    let config = Config {
        unit: a.unit,
        kind: a.kind,
        name: a.name,
        parent: a.parent,
        trust_root,
        listen,
        api: a.api,
        bootstrap: a.bootstrap,
        mdns: None,
        resync_secs: None,
        scrub_docs_per_second: None,
        view: None,
        settle_changes_per_second: None,
        log_format: None,
    };
    let checked = config.check().context("invalid arguments")?;
    let secret = Secret::generate();
    create_data_dir(&dir, &config, &secret, root_secret.as_ref())?;

    // A district certifies its own node key with its root key.
    if let Some(root) = &root_secret {
        let t = now();
        let cert = Certificate {
            subject: secret.public(),
            unit: checked.unit,
            kind: UnitKind::District,
            parent: None,
            name: config.name.clone(),
            not_before: t,
            not_after: t + DISTRICT_CERT_DAYS * 86_400,
        }
        .sign(root);
        let mut opened = open(&dir)?;
        opened
            .replica
            .insert_records(vec![cert])
            .code(Exit::Failure)?;
    }
    id(&a.data_dir)
}

pub fn id_json(dir: &DataDir) -> anyhow::Result<serde_json::Value> {
    let (config, checked) = dir.load_config()?;
    let secret = dir.secret()?;
    let public: PublicKey = secret.public();
    let store = crate::node::open_store(dir).ok();
    let certified = match store {
        Some(store) => {
            let r = gongjian_engine::Replica::open(store, checked.trust_root, None)?;
            r.trust().admit(&public, now()).is_ok()
        }
        None => false,
    };
    Ok(json!({
        "unit": checked.unit.to_string(),
        "kind": checked.kind.as_str(),
        "name": config.name,
        "public_key": public.to_string(),
        "peer_id": public.peer_id().to_string(),
        "trust_root": checked.trust_root.to_string(),
        "parent": checked.parent.map(|p| p.to_string()),
        "certified": certified,
    }))
}

pub fn id(data_dir: &Path) -> anyhow::Result<()> {
    let v = id_json(&DataDir(data_dir.to_owned()))?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
