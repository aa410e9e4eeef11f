//! `gongjian config check`: the configuration as the daemon would run it
//! (file plus `GONGJIAN_*` overrides), every value checked, and what the
//! node needs besides: keys, token, store, certificate.

use std::os::unix::fs::PermissionsExt;

use serde_json::{Value, json};

use crate::DirArg;
use crate::config::{DataDir, ENV_KEYS};
use crate::exit::{Exit, bail};
use crate::node::now;

#[derive(Debug, clap::Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration and what the node needs to run; exit 3 if
    /// anything is wrong.
    Check(DirArg),
}

fn check(name: &str, res: Result<String, String>) -> Value {
    match res {
        Ok(detail) => json!({"check": name, "ok": true, "detail": detail}),
        Err(detail) => json!({"check": name, "ok": false, "detail": detail}),
    }
}

fn private_file(path: std::path::PathBuf) -> Result<String, String> {
    let meta = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    if meta.permissions().mode() & 0o077 != 0 {
        return Err(format!(
            "{} is readable by others: chmod 600 it",
            path.display()
        ));
    }
    Ok(format!("{} (mode 600)", path.display()))
}

pub fn run(c: ConfigCommand) -> anyhow::Result<()> {
    let ConfigCommand::Check(a) = c;
    let dir = DataDir(a.data_dir);
    let (config, checked) = dir.load_config()?;
    let overrides: Vec<String> = ENV_KEYS
        .iter()
        .map(|k| format!("GONGJIAN_{}", k.to_uppercase()))
        .filter(|k| std::env::var_os(k).is_some())
        .collect();
    let mut checks = vec![check(
        "config",
        Ok(format!(
            "{} valid{}",
            dir.config().display(),
            if overrides.is_empty() {
                String::new()
            } else {
                format!(", overridden by {}", overrides.join(", "))
            }
        )),
    )];
    checks.push(check("node key", private_file(dir.node_key())));
    if dir.root_key().exists() {
        checks.push(check("root key", private_file(dir.root_key())));
    }
    checks.push(check(
        "api token",
        private_file(dir.api_token()).and_then(|d| {
            let t = std::fs::read_to_string(dir.api_token()).map_err(|e| e.to_string())?;
            if t.trim().len() < 32 {
                return Err("the token is shorter than 32 characters".into());
            }
            Ok(d)
        }),
    ));
    let store = match crate::node::open(&dir) {
        Ok(o) => {
            let key = dir.secret()?.public();
            let cert = crate::api::certificate(o.replica.trust(), &key, now());
            let state = cert["state"].as_str().unwrap_or("").to_owned();
            checks.push(check(
                "certificate",
                match state.as_str() {
                    "valid" => Ok(format!("valid, {} days left", cert["days_left"])),
                    "expiring" => Err(format!(
                        "expires in {} days: ask the parent unit to renew it",
                        cert["days_left"]
                    )),
                    _ => Err(cert["why"].as_str().unwrap_or("invalid").to_owned()),
                },
            ));
            Ok("opened".to_owned())
        }
        Err(e) if e.downcast_ref::<Exit>() == Some(&Exit::Locked) => {
            Ok("held by the running daemon (certificate: see `gongjian status`)".to_owned())
        }
        Err(e) => Err(format!("{e:#}")),
    };
    checks.push(check("store", store));
    let ok = checks.iter().all(|c| c["ok"] == true);
    println!(
        "{}",
        serde_json::to_string_pretty(&json!({
            "ok": ok,
            "unit": checked.unit,
            "kind": checked.kind.to_string(),
            "effective": config,
            "checks": checks,
        }))?
    );
    if !ok {
        return bail(
            Exit::BadInput,
            "the configuration check failed (see checks)",
        );
    }
    Ok(())
}
