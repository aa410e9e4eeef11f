//! `cert issue | install | revoke | renew | list` and `records import`.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::Context;
use gongjian_identity::{
    Certificate, KeyAdd, PublicKey, RecordBody, Recovery, Revocation, RevocationCut,
    RevocationTarget, Secret, SignedRecord, UnitId, UnitKind,
};
use gongjian_model::{Body, CertChainError, verify_record};
use serde_json::json;

use crate::config::DataDir;
use crate::exit::{Coded, Exit, bail};
use crate::node::{Opened, now, open};
use crate::records_file;

#[derive(Debug, clap::Subcommand)]
pub enum CertCommand {
    /// Admit a unit: sign a certificate for its key (a district signs with its root key).
    Issue {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        kind: String,
        #[arg(long)]
        name: String,
        /// The unit's public key, as `gongjian id` prints it.
        #[arg(long)]
        key: String,
        #[arg(long, default_value_t = 365)]
        valid_days: u64,
        /// The certificate file (with the whole chain) to carry to the unit.
        #[arg(long)]
        out: PathBuf,
    },
    /// Install this node's certificate file (checked against the pinned root).
    Install {
        #[arg(long)]
        data_dir: PathBuf,
        file: PathBuf,
    },
    /// Revoke a unit's keys, or one key. The cut keeps what this node holds
    /// from them, unless --reject-all.
    Revoke {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long, conflicts_with = "key", required_unless_present = "key")]
        unit: Option<String>,
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value = "")]
        reason: String,
        /// Accept nothing signed by the revoked keys (a leaked key).
        #[arg(long)]
        reject_all: bool,
        /// Also write the revocation to a file to carry to other nodes.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Renew a unit's certificate (optionally for a new key: key replacement).
    Renew {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        unit: String,
        /// New key; defaults to the unit's current key.
        #[arg(long)]
        key: Option<String>,
        #[arg(long, default_value_t = 365)]
        valid_days: u64,
        #[arg(long)]
        out: PathBuf,
    },
    /// This node's certificate status and the roster of units it admitted.
    List {
        #[arg(long)]
        data_dir: PathBuf,
    },
    /// Add a write key to this unit's documents (signed by this node's key,
    /// a current write key): a second device, a new office computer.
    AddWriter {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        key: String,
        /// Also write the record to a file to carry to other nodes.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// As a parent, give a unit that lost its keys a new write key. Every
    /// view shows recoveries.
    Recover {
        #[arg(long)]
        data_dir: PathBuf,
        #[arg(long)]
        unit: String,
        #[arg(long)]
        key: String,
        #[arg(long)]
        reason: String,
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Import a records file (revocations, certificates of others).
    Import {
        #[arg(long)]
        data_dir: PathBuf,
        file: PathBuf,
    },
}

pub fn run(c: CertCommand) -> anyhow::Result<()> {
    match c {
        CertCommand::Issue {
            data_dir,
            unit,
            kind,
            name,
            key,
            valid_days,
            out,
        } => {
            let mut o = open(&DataDir(data_dir))?;
            let unit: UnitId = unit.parse().context("--unit").code(Exit::BadInput)?;
            let kind: UnitKind = kind.parse().context("--kind").code(Exit::BadInput)?;
            let key = parse_key(&key)?;
            issue(&mut o, unit, kind, name, key, valid_days, &out)
        }
        CertCommand::Renew {
            data_dir,
            unit,
            key,
            valid_days,
            out,
        } => {
            let mut o = open(&DataDir(data_dir))?;
            let unit: UnitId = unit.parse().context("--unit").code(Exit::BadInput)?;
            let Some(info) = o.replica.trust().unit(&unit) else {
                return bail(
                    Exit::BadInput,
                    format!("--unit: this node holds no certificate of {unit}"),
                );
            };
            let key = match key {
                Some(k) => parse_key(&k)?,
                None if info.keys.len() == 1 => {
                    *info.keys.iter().next().unwrap_or_else(|| unreachable!())
                }
                None => {
                    return bail(
                        Exit::BadInput,
                        format!("--key: {unit} has {} keys; name one", info.keys.len()),
                    );
                }
            };
            issue(&mut o, unit, info.kind, info.name, key, valid_days, &out)
        }
        CertCommand::Install { data_dir, file } => install(&DataDir(data_dir), &file),
        CertCommand::Revoke {
            data_dir,
            unit,
            key,
            reason,
            reject_all,
            out,
        } => revoke(&DataDir(data_dir), unit, key, reason, reject_all, out),
        CertCommand::List { data_dir } => list(&DataDir(data_dir)),
        CertCommand::AddWriter { data_dir, key, out } => {
            let mut o = open(&DataDir(data_dir))?;
            let key = parse_key(&key)?;
            let signer = o.dir.secret()?;
            o.replica
                .trust()
                .admit(&signer.public(), now())
                .context("this node cannot sign key records")
                .code(Exit::Untrusted)?;
            let record = KeyAdd {
                unit: o.checked.unit,
                key,
                issued_at: now(),
            }
            .sign(&signer);
            store_and_carry(&mut o, record, out.as_deref(), "key_add")
        }
        CertCommand::Recover {
            data_dir,
            unit,
            key,
            reason,
            out,
        } => {
            let mut o = open(&DataDir(data_dir))?;
            let unit: UnitId = unit.parse().context("--unit").code(Exit::BadInput)?;
            unit.check_parent(&o.checked.unit)
                .context("--unit")
                .code(Exit::Forbidden)?;
            if reason.trim().is_empty() {
                return bail(
                    Exit::BadInput,
                    "--reason must say why (every view shows it)",
                );
            }
            let key = parse_key(&key)?;
            let signer = issuing_secret(&o)?;
            let record = Recovery {
                unit,
                keys: vec![key],
                reason,
                issued_at: now(),
            }
            .sign(&signer);
            store_and_carry(&mut o, record, out.as_deref(), "recovery")
        }
        CertCommand::Import { data_dir, file } => {
            let mut o = open(&DataDir(data_dir))?;
            let records = records_file::read(&file)?;
            let n = records.len();
            let fresh = o.replica.insert_records(records).code(Exit::Untrusted)?;
            println!("{}", json!({"records": n, "new": fresh.len()}));
            Ok(())
        }
    }
}

fn store_and_carry(
    o: &mut Opened,
    record: SignedRecord,
    out: Option<&std::path::Path>,
    what: &str,
) -> anyhow::Result<()> {
    o.replica
        .insert_records(vec![record.clone()])
        .code(Exit::Failure)?;
    if let Some(out) = out {
        records_file::write(out, std::slice::from_ref(&record))?;
    }
    println!("{}", json!({ what: record.hash().to_string() }));
    Ok(())
}

fn parse_key(text: &str) -> anyhow::Result<PublicKey> {
    text.parse::<PublicKey>().map_err(|e| {
        let exit = match e {
            gongjian_identity::KeyParseError::Weak => Exit::Untrusted,
            gongjian_identity::KeyParseError::Format => Exit::BadInput,
        };
        anyhow::Error::new(e).context("--key").context(exit)
    })
}

/// The key this node signs certificates and revocations with: the root key
/// for a district, else its node key.
fn issuing_secret(o: &Opened) -> anyhow::Result<Secret> {
    if o.checked.kind == UnitKind::District {
        return match o.dir.root_secret()? {
            Some(s) => Ok(s),
            None => bail(
                Exit::Untrusted,
                "this district holds no root key (root.key) to sign with",
            ),
        };
    }
    let secret = o.dir.secret()?;
    o.replica
        .trust()
        .admit(&secret.public(), now())
        .context("this node cannot issue")
        .code(Exit::Untrusted)?;
    Ok(secret)
}

/// Certificates of `unit` and of every unit above it, as held here.
fn chain_records(o: &Opened, unit: &UnitId) -> Vec<SignedRecord> {
    let mut units = BTreeSet::from([*unit]);
    let mut frontier = vec![*unit];
    while let Some(u) = frontier.pop() {
        if let Some(info) = o.replica.trust().unit(&u)
            && let Some(p) = info.parent
            && units.insert(p)
        {
            frontier.push(p);
        }
    }
    o.replica
        .membership()
        .records()
        .filter(|r| matches!(&r.body, Body::Certificate(c) if units.contains(&c.unit)))
        .map(|r| r.record.clone())
        .collect()
}

fn issue(
    o: &mut Opened,
    unit: UnitId,
    kind: UnitKind,
    name: String,
    key: PublicKey,
    valid_days: u64,
    out: &std::path::Path,
) -> anyhow::Result<()> {
    unit.check_kind(kind)
        .context("--unit")
        .code(Exit::BadInput)?;
    unit.check_parent(&o.checked.unit)
        .context("--unit")
        .code(Exit::BadInput)?;
    if name.trim().is_empty() {
        return bail(Exit::BadInput, "--name must not be empty");
    }
    let signer = issuing_secret(o)?;
    let t = now();
    let cert = Certificate {
        subject: key,
        unit,
        kind,
        parent: Some(o.checked.unit),
        name,
        not_before: t,
        not_after: t + valid_days * 86_400,
    }
    .sign(&signer);
    o.replica
        .insert_records(vec![cert.clone()])
        .code(Exit::Failure)?;
    let mut records = vec![cert.clone()];
    records.extend(chain_records(o, &o.checked.unit));
    records_file::write(out, &records)?;
    println!(
        "{}",
        json!({"certificate": cert.hash().to_string(), "unit": unit.to_string(), "key": key.to_string(), "out": out.display().to_string()})
    );
    Ok(())
}

fn install(dir: &DataDir, file: &std::path::Path) -> anyhow::Result<()> {
    let mut o = open(dir)?;
    let records = records_file::read(file)?;
    let me = o.dir.secret()?.public();
    let mut candidate = o.replica.membership().clone();
    let mut mine = None;
    for r in &records {
        let v = verify_record(r.clone())
            .with_context(|| format!("{}", file.display()))
            .code(Exit::Untrusted)?;
        if let Body::Certificate(c) = &v.body
            && c.subject == me
        {
            mine = Some(c.clone());
        }
        candidate.insert(v);
    }
    let Some(cert) = mine else {
        return bail(
            Exit::Untrusted,
            format!(
                "{}: no certificate for this node's key {me}",
                file.display()
            ),
        );
    };
    if cert.unit != o.checked.unit || cert.kind != o.checked.kind {
        return bail(
            Exit::Untrusted,
            format!(
                "certificate is for {} ({}), this node is {} ({})",
                cert.unit, cert.kind, o.checked.unit, o.checked.kind
            ),
        );
    }
    if cert.parent != o.checked.parent {
        return bail(
            Exit::Untrusted,
            format!(
                "certificate names parent {}, this node's parent is {}",
                cert.parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "none".into()),
                o.checked
                    .parent
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "none".into())
            ),
        );
    }
    let trust = candidate.evaluate();
    trust.admit(&me, now()).map_err(|e| {
        let msg = match &e {
            CertChainError::NotRooted(_) => format!("{e} (pinned root {})", o.checked.trust_root),
            _ => e.to_string(),
        };
        anyhow::anyhow!(msg).context(Exit::Untrusted)
    })?;
    o.replica.insert_records(records).code(Exit::Untrusted)?;
    println!(
        "{}",
        json!({"installed": true, "unit": cert.unit.to_string(), "name": cert.name, "not_after": cert.not_after})
    );
    Ok(())
}

fn revoke(
    dir: &DataDir,
    unit: Option<String>,
    key: Option<String>,
    reason: String,
    reject_all: bool,
    out: Option<PathBuf>,
) -> anyhow::Result<()> {
    let mut o = open(dir)?;
    let target = match (unit, key) {
        (Some(u), _) => {
            let unit: UnitId = u.parse().context("--unit").code(Exit::BadInput)?;
            let keys: Vec<PublicKey> = o.replica.trust().keys_of(&unit).into_iter().collect();
            if keys.is_empty() {
                return bail(
                    Exit::BadInput,
                    format!("--unit: this node holds no certificate of {unit}"),
                );
            }
            RevocationTarget::Unit { unit, keys }
        }
        (None, Some(k)) => RevocationTarget::Key(parse_key(&k)?),
        (None, None) => return bail(Exit::BadInput, "name --unit or --key"),
    };
    let keys: BTreeSet<PublicKey> = target.keys().iter().copied().collect();
    let cut = if reject_all {
        RevocationCut::default()
    } else {
        o.replica.revocation_cut(&keys).code(Exit::Failure)?
    };
    let signer = issuing_secret(&o)?;
    let record = Revocation {
        target,
        cut,
        reason,
        issued_at: now(),
    }
    .sign(&signer);
    // Check the effect before storing: a revocation this node may not make
    // is refused, not kept.
    let mut candidate = o.replica.membership().clone();
    candidate.insert(verify_record(record.clone()).code(Exit::Failure)?);
    let trust = candidate.evaluate();
    if let Some(k) = keys.iter().find(|k| {
        !trust
            .revocations_of(k)
            .iter()
            .any(|(h, _)| *h == record.hash())
    }) {
        return bail(
            Exit::Forbidden,
            format!("this node has no authority to revoke {k}"),
        );
    }
    o.replica
        .insert_records(vec![record.clone()])
        .code(Exit::Failure)?;
    if let Some(out) = &out {
        records_file::write(out, std::slice::from_ref(&record))?;
    }
    println!(
        "{}",
        json!({"revocation": record.hash().to_string(), "keys": keys.iter().map(|k| k.to_string()).collect::<Vec<_>>()})
    );
    Ok(())
}

fn list(dir: &DataDir) -> anyhow::Result<()> {
    let o = open(dir)?;
    let trust = o.replica.trust();
    let me = o.dir.secret()?.public();
    let status = match trust.admit(&me, now()) {
        Ok(_) => "valid".to_owned(),
        Err(e) => e.to_string(),
    };
    let roster: Vec<_> = trust
        .children_of(&o.checked.unit)
        .into_iter()
        .map(|u| {
            json!({
                "unit": u.unit.to_string(),
                "kind": u.kind.as_str(),
                "name": u.name,
                "keys": u.keys.iter().map(|k| json!({"key": k.to_string(), "revoked": trust.is_revoked(k)})).collect::<Vec<_>>(),
            })
        })
        .collect();
    let recoveries: Vec<_> = trust
        .recoveries()
        .iter()
        .map(|(h, u)| json!({"record": h.to_string(), "unit": u.to_string()}))
        .collect();
    println!(
        "{}",
        serde_json::to_string_pretty(
            &json!({"certificate": status, "roster": roster, "recoveries": recoveries})
        )?
    );
    Ok(())
}
