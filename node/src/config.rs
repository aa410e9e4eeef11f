//! The node's data dir and its `config.toml`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::Context;
use gongjian_identity::{PublicKey, Secret, UnitId, UnitKind, read_secret};
use serde::{Deserialize, Serialize};

use crate::exit::{Coded, Exit, bail};

/// `DIR/config.toml`. Every field is checked when loaded.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// 12-digit division code or 18-character unified social credit code.
    pub unit: String,
    /// district | street | community | resident
    pub kind: String,
    pub name: String,
    /// The parent unit (none for the district).
    pub parent: Option<String>,
    /// The district's root key (`ed25519:<hex>`), pinned.
    pub trust_root: String,
    /// libp2p listen addresses.
    pub listen: Vec<String>,
    /// HTTP API address (HOST:PORT).
    pub api: String,
    /// Peers dialled at start.
    #[serde(default)]
    pub bootstrap: Vec<String>,
    /// Find peers on the LAN by mDNS (default on).
    #[serde(default)]
    pub mdns: Option<bool>,
    /// Seconds between reconciliations with a connected peer (default 60).
    #[serde(default)]
    pub resync_secs: Option<u64>,
    /// Log lines as `text` (default) or `json` (one object per line).
    #[serde(default)]
    pub log_format: Option<String>,
    /// Documents the node's own scrub reads back and checks each second
    /// (default 8; 0 turns it off). Corrupt ones are dropped and fetched
    /// again from peers.
    #[serde(default)]
    pub scrub_docs_per_second: Option<u64>,
    /// Keep the merged view (default true). A hub that only stores and
    /// relays sets false: it applies received changes to automerge later,
    /// when idle (`settle_changes_per_second`), and the endpoints that read
    /// the view answer 503.
    #[serde(default)]
    pub view: Option<bool>,
    /// On a node without the view: received changes applied to automerge
    /// each second, at most (default 4096; 0 never, leaving rule 8 unrun).
    #[serde(default)]
    pub settle_changes_per_second: Option<u64>,
}

/// Keys an environment variable `GONGJIAN_<KEY>` may override (operations
/// only: who the node is comes from the file alone).
pub const ENV_KEYS: [&str; 9] = [
    "api",
    "listen",
    "bootstrap",
    "mdns",
    "resync_secs",
    "log_format",
    "scrub_docs_per_second",
    "view",
    "settle_changes_per_second",
];

/// A config whose values have been parsed.
#[derive(Debug, Clone)]
pub struct Checked {
    pub unit: UnitId,
    pub kind: UnitKind,
    pub parent: Option<UnitId>,
    pub trust_root: PublicKey,
}

impl Config {
    pub fn check(&self) -> anyhow::Result<Checked> {
        let unit: UnitId = self.unit.parse().context("unit").code(Exit::BadInput)?;
        let kind: UnitKind = self.kind.parse().context("kind").code(Exit::BadInput)?;
        unit.check_kind(kind).context("unit").code(Exit::BadInput)?;
        let parent = match (&self.parent, kind) {
            (None, UnitKind::District) => None,
            (Some(_), UnitKind::District) => {
                return bail(Exit::BadInput, "parent: a district has no parent");
            }
            (None, _) => return bail(Exit::BadInput, format!("parent: a {kind} needs --parent")),
            (Some(p), _) => {
                let p: UnitId = p.parse().context("parent").code(Exit::BadInput)?;
                unit.check_parent(&p)
                    .context("parent")
                    .code(Exit::BadInput)?;
                Some(p)
            }
        };
        if self.name.trim().is_empty() || self.name.chars().count() > 100 {
            return bail(Exit::BadInput, "name: must be 1 to 100 characters");
        }
        let trust_root: PublicKey = self
            .trust_root
            .parse()
            .context("trust_root")
            .code(Exit::BadInput)?;
        for a in self.listen.iter().chain(&self.bootstrap) {
            a.parse::<multiaddr::Multiaddr>()
                .with_context(|| format!("`{a}` is not a multiaddr"))
                .code(Exit::BadInput)?;
        }
        if let Some(f) = &self.log_format
            && f != "text"
            && f != "json"
        {
            return bail(
                Exit::BadInput,
                format!("log_format: `{f}` is not text or json"),
            );
        }
        if self.resync_secs == Some(0) {
            return bail(Exit::BadInput, "resync_secs: must be at least 1");
        }
        if self
            .settle_changes_per_second
            .is_some_and(|n| n > 1_000_000)
        {
            return bail(
                Exit::BadInput,
                "settle_changes_per_second: at most 1000000 (it runs on the sync thread)",
            );
        }
        if self.scrub_docs_per_second.is_some_and(|n| n > 10_000) {
            return bail(
                Exit::BadInput,
                "scrub_docs_per_second: at most 10000 (it runs on the sync thread)",
            );
        }
        self.api
            .parse::<std::net::SocketAddr>()
            .with_context(|| format!("api: `{}` is not HOST:PORT", self.api))
            .code(Exit::BadInput)?;
        Ok(Checked {
            unit,
            kind,
            parent,
            trust_root,
        })
    }
}

/// Paths inside a data dir.
#[derive(Debug, Clone)]
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn config(&self) -> PathBuf {
        self.0.join("config.toml")
    }
    pub fn node_key(&self) -> PathBuf {
        self.0.join("node.key")
    }
    pub fn root_key(&self) -> PathBuf {
        self.0.join("root.key")
    }
    pub fn db(&self) -> PathBuf {
        self.0.join("db")
    }
    /// Written by `gongjian run` once the API listens: its address.
    pub fn api_addr(&self) -> PathBuf {
        self.0.join("api.addr")
    }

    /// The node's users, sessions and audit log.
    pub fn accounts(&self) -> PathBuf {
        self.0.join("accounts")
    }

    pub fn api_token(&self) -> PathBuf {
        self.0.join("api.token")
    }

    pub fn load_config(&self) -> anyhow::Result<(Config, Checked)> {
        let path = self.config();
        if !self.0.is_dir() {
            return bail(
                Exit::DataDir,
                format!("{}: no such data dir", self.0.display()),
            );
        }
        if !path.exists() {
            return bail(
                Exit::DataDir,
                format!(
                    "{}: not initialised (run `gongjian init`)",
                    self.0.display()
                ),
            );
        }
        let text = fs::read_to_string(&path)
            .with_context(|| path.display().to_string())
            .code(Exit::Failure)?;
        // The file first (so its errors name their line), then the
        // environment's overrides.
        toml::from_str::<Config>(&text)
            .with_context(|| format!("{}: invalid config", path.display()))
            .code(Exit::BadInput)?;
        use figment::providers::Format as _;
        let config: Config = figment::Figment::from(figment::providers::Toml::string(&text))
            .merge(figment::providers::Env::prefixed("GONGJIAN_").only(&ENV_KEYS))
            .extract()
            .with_context(|| {
                format!(
                    "{} with GONGJIAN_* overrides: invalid config",
                    path.display()
                )
            })
            .code(Exit::BadInput)?;
        let checked = config
            .check()
            .with_context(|| format!("{}: invalid config", path.display()))?;
        Ok((config, checked))
    }

    pub fn secret(&self) -> anyhow::Result<Secret> {
        read_secret(&self.node_key()).code(Exit::Untrusted)
    }

    pub fn root_secret(&self) -> anyhow::Result<Option<Secret>> {
        let p = self.root_key();
        if !p.exists() {
            return Ok(None);
        }
        read_secret(&p).code(Exit::Untrusted).map(Some)
    }
}

pub fn write_config(path: &Path, config: &Config) -> anyhow::Result<()> {
    let text = toml::to_string_pretty(config).context("encoding config")?;
    fs::write(path, text).with_context(|| path.display().to_string())
}
