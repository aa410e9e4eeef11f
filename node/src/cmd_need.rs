//! `need add | list | status`: the unit's list of needs, a simple document
//! that exercises signed local edits end to end.

use std::path::PathBuf;

use anyhow::Context;
use gongjian_engine::EngineError;
use gongjian_identity::{DocId, DocType, UnitId};
use gongjian_model::{NeedStatus, NeedsDoc};
use serde_json::json;

use crate::config::DataDir;
use crate::exit::{Coded, Exit};
use crate::node::{Opened, now, open, own_doc};

#[derive(Debug, clap::Subcommand)]
pub enum NeedCommand {
    /// Add a need to this unit's list (signed, durable before it returns).
    Add {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        title: String,
        #[arg(long, default_value = "")]
        category: String,
        #[arg(long, default_value = "")]
        description: String,
        /// Add this many needs (numbered), printing one line per durable write.
        #[arg(long, default_value_t = 1)]
        repeat: u32,
    },
    /// List the needs of every unit this node holds, or of one unit.
    List {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        unit: Option<String>,
    },
    /// Set the status of one of this unit's needs.
    Status {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        id: String,
        /// open | in_progress | resolved | closed
        #[arg(long)]
        status: String,
    },
}

fn engine_exit(e: EngineError) -> anyhow::Error {
    let exit = match &e {
        EngineError::NotAdmitted(_) => Exit::Untrusted,
        EngineError::NotWriter(_) | EngineError::LocalRejected(_) => Exit::Forbidden,
        EngineError::Need(_) | EngineError::UnknownDocument(_) => Exit::BadInput,
        _ => Exit::Failure,
    };
    anyhow::Error::new(e).context(exit)
}

fn own_needs_doc(o: &mut Opened) -> anyhow::Result<DocId> {
    own_doc(&mut o.replica, &o.checked.unit, DocType::Needs).map_err(engine_exit)
}

pub fn run(c: NeedCommand) -> anyhow::Result<()> {
    match c {
        NeedCommand::Add {
            data_dir,
            title,
            category,
            description,
            repeat,
        } => {
            let mut o = open(&DataDir(data_dir))?;
            let doc = own_needs_doc(&mut o)?;
            for n in 1..=repeat {
                let title = if repeat == 1 {
                    title.clone()
                } else {
                    format!("{title} {n}")
                };
                let mut raw = [0u8; 16];
                rand::fill(&mut raw);
                let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
                let t = now();
                let change = o
                    .replica
                    .local_change(&doc, t, |am| {
                        NeedsDoc(am).add(&id, &title, &category, &description, t as i64)
                    })
                    .map_err(engine_exit)?;
                // Printed only after the store has synced the write.
                println!(
                    "{}",
                    json!({"id": id, "doc": doc.to_string(), "change": change.hash().to_string(), "title": title})
                );
            }
            Ok(())
        }
        NeedCommand::List { data_dir, unit } => {
            let o = open(&DataDir(data_dir))?;
            let filter: Option<UnitId> = unit
                .map(|u| u.parse().context("--unit").code(Exit::BadInput))
                .transpose()?;
            let mut rows = Vec::new();
            for (doc, g) in o.replica.trust().documents() {
                if g.doc_type != DocType::Needs || filter.is_some_and(|u| u != g.unit) {
                    continue;
                }
                let mut am = o.replica.load(doc).code(Exit::Failure)?;
                for need in NeedsDoc(&mut am).list() {
                    rows.push(json!({
                        "unit": g.unit.to_string(),
                        "doc": doc.to_string(),
                        "id": need.id,
                        "title": need.title,
                        "category": need.category,
                        "description": need.description,
                        "status": need.status.as_str(),
                        "status_zh": need.status.label_zh(),
                        "created_at": need.created_at,
                        "title_conflicts": need.title_conflicts,
                    }));
                }
            }
            println!("{}", serde_json::to_string_pretty(&rows)?);
            Ok(())
        }
        NeedCommand::Status {
            data_dir,
            id,
            status,
        } => {
            let mut o = open(&DataDir(data_dir))?;
            let status: NeedStatus = status.parse().context("--status").code(Exit::BadInput)?;
            let doc = own_needs_doc(&mut o)?;
            let t = now();
            let change = o
                .replica
                .local_change(&doc, t, |am| NeedsDoc(am).set_status(&id, status, t as i64))
                .map_err(engine_exit)?;
            println!(
                "{}",
                json!({"id": id, "status": status.as_str(), "change": change.hash().to_string()})
            );
            Ok(())
        }
    }
}
