//! `gongjian`: the node's command line. CLI and wiring only; the logic lives
//! in the crates.

mod accounts;
mod api;
mod api_bundle;
mod api_civic;
mod api_console;
mod api_export;
mod backend;
mod client;
mod cmd_admin;
mod cmd_api;
mod cmd_bundle;
mod cmd_cert;
mod cmd_config;
mod cmd_demo;
mod cmd_init;
mod cmd_run;
mod cmd_user;
mod config;
mod exit;
mod metrics;
mod node;
mod openapi;
mod records_file;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::exit::Exit;

/// gongjian (共建): sync and federation for the offices of a city district.
#[derive(Debug, Parser)]
#[command(name = "gongjian", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a node: config, keys (and for a district, the root key), store.
    Init(cmd_init::InitArgs),
    /// Print this node's identity as JSON.
    Id(DirArg),
    /// Certificates: issue, install, revoke, renew, list.
    #[command(subcommand)]
    Cert(cmd_cert::CertCommand),
    /// The unit's list of needs (需求清单): `item` for the need list.
    #[command(subcommand)]
    Need(cmd_api::NeedCommand),
    /// Records of this unit's lists: add, set status, claim, escalate, show.
    #[command(subcommand)]
    Item(cmd_api::ItemCommand),
    /// The merged view: items, stats, units, digest, matches, agreements, grids.
    #[command(subcommand)]
    View(cmd_api::ViewCommand),
    /// This unit's grids (网格).
    #[command(subcommand)]
    Grid(cmd_api::GridCommand),
    /// Co-building agreements (共建协议): propose, sign.
    #[command(subcommand)]
    Agreement(cmd_api::AgreementCommand),
    /// Whistles (吹哨): blow, respond (报到).
    #[command(subcommand)]
    Whistle(cmd_api::WhistleCommand),
    /// The people who use the node's web console: add, list, set, remove, audit.
    #[command(subcommand)]
    User(cmd_user::UserCommand),
    /// Any API request (GET or POST a path), printed as JSON.
    Api(cmd_api::ApiArgs),
    /// Sneakernet: carry signed records and changes on a file.
    #[command(subcommand)]
    Bundle(cmd_bundle::BundleCommand),
    /// The configuration: check it as the daemon would run it.
    #[command(subcommand)]
    Config(cmd_config::ConfigCommand),
    /// Run the node: store, network, sync, until SIGTERM or SIGINT.
    Run(DirArg),
    /// The node: store counts, certificate expiry, peers.
    Status(cmd_api::Common),
    /// Copy the store to a directory (a consistent RocksDB checkpoint; live, through the daemon, while it runs).
    Backup(cmd_admin::BackupArgs),
    /// Replace the store with a backup; moves the node to a new epoch.
    Restore(cmd_admin::RestoreArgs),
    /// Read back and check the whole store (checksums, signatures, heads),
    /// the daemon stopped; `--repair` drops corrupt documents to refetch.
    Verify(cmd_admin::VerifyArgs),
    /// Demo data: generate a district-scale data set into a data directory.
    #[command(subcommand)]
    Demo(cmd_demo::DemoCommand),
}

#[derive(Debug, clap::Args)]
pub struct DirArg {
    /// The node's data directory.
    #[arg(long, env = "GONGJIAN_DATA_DIR")]
    pub data_dir: PathBuf,
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Init(a) => cmd_init::init(a),
        Command::Demo(c) => cmd_demo::run(c),
        Command::Id(a) => cmd_init::id(&a.data_dir),
        Command::Cert(c) => cmd_cert::run(c),
        Command::Need(c) => cmd_api::need(c),
        Command::Item(c) => cmd_api::item(c),
        Command::View(c) => cmd_api::view(c),
        Command::Grid(c) => cmd_api::grid(c),
        Command::Agreement(c) => cmd_api::agreement(c),
        Command::Whistle(c) => cmd_api::whistle(c),
        Command::Api(a) => cmd_api::api(a),
        Command::User(c) => cmd_user::run(c),
        Command::Bundle(c) => cmd_bundle::run(c),
        Command::Config(c) => cmd_config::run(c),
        Command::Run(a) => cmd_run::run(a),
        Command::Status(c) => cmd_api::status(c),
        Command::Backup(a) => cmd_admin::backup(a),
        Command::Restore(a) => cmd_admin::restore(a),
        Command::Verify(a) => cmd_admin::verify(a),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs as text, or JSON lines (GONGJIAN_LOG_FORMAT, or the daemon's
    // `log_format`).
    let json_logs = match std::env::var("GONGJIAN_LOG_FORMAT").ok() {
        Some(f) => f == "json",
        None => match &cli.command {
            Command::Run(a) => config::DataDir(a.data_dir.clone())
                .load_config()
                .ok()
                .and_then(|(c, _)| c.log_format)
                .is_some_and(|f| f == "json"),
            _ => false,
        },
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("GONGJIAN_LOG").unwrap_or_else(|_| {
        // automerge's own spans are at info (one per column of every change
        // parsed): formatted, they took 6 % of a district's CPU in a cold
        // sync, and tell an operator nothing.
        tracing_subscriber::EnvFilter::new(if matches!(cli.command, Command::Run(_)) {
            "info,automerge=warn"
        } else {
            "warn"
        })
    });
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json_logs {
        logs.json().init();
    } else {
        logs.init();
    }
    // Automerge can panic on a malformed change; the engine contains it with
    // `catch_unwind`. Report panics through the log, not raw on stderr.
    std::panic::set_hook(Box::new(|info| {
        let location = info.location().map(|l| l.to_string()).unwrap_or_default();
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_default();
        tracing::error!(%location, %payload, "panic");
    }));
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let exit = e.downcast_ref::<Exit>().copied().unwrap_or(Exit::Failure);
            // The category is the outermost context; print the cause chain after it.
            eprintln!("error: {e:#}");
            ExitCode::from(exit as u8)
        }
    }
}
