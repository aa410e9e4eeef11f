//! Helpers of the command-line and API tests: the real binary, real data
//! dirs, a district → street → community tree enrolled by the CLI.

#![allow(dead_code)]

pub mod daemon;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;
use tempfile::TempDir;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_gongjian"));
    c.env_remove("GONGJIAN_FAKE_NOW")
        .env_remove("GONGJIAN_DATA_DIR");
    c
}

pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

pub fn ok(args: &[&str]) -> Value {
    let out = run(args);
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{args:?}: {e}: {}", String::from_utf8_lossy(&out.stdout)))
}

pub fn fails(args: &[&str], code: i32, needle: &str) {
    let out = run(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: `{needle}` not in: {err}");
}

pub fn p(d: &Path) -> &str {
    d.to_str().unwrap()
}

pub struct Tree {
    pub _tmp: TempDir,
    pub district: PathBuf,
    pub street: PathBuf,
    pub community: PathBuf,
    pub root: String,
}

pub fn init(
    dir: &Path,
    unit: &str,
    kind: &str,
    name: &str,
    parent: Option<&str>,
    root: Option<&str>,
) -> Value {
    let mut args = vec![
        "init",
        "--data-dir",
        p(dir),
        "--unit",
        unit,
        "--kind",
        kind,
        "--name",
        name,
        "--listen",
        "/ip4/127.0.0.1/tcp/0",
        "--api",
        "127.0.0.1:0",
    ];
    if let Some(pa) = parent {
        args.extend(["--parent", pa]);
    }
    if let Some(r) = root {
        args.extend(["--trust-root", r]);
    }
    ok(&args)
}

pub fn enrol(parent: &Path, child: &Path, unit: &str, kind: &str, name: &str) {
    enrol_for_days(parent, child, unit, kind, name, 365);
}

/// [`enrol`] with a certificate valid for `days`.
pub fn enrol_for_days(parent: &Path, child: &Path, unit: &str, kind: &str, name: &str, days: u64) {
    let days = days.to_string();
    let key = ok(&["id", "--data-dir", p(child)])["public_key"]
        .as_str()
        .unwrap()
        .to_owned();
    let file = child.with_extension("cert");
    ok(&[
        "cert",
        "issue",
        "--data-dir",
        p(parent),
        "--unit",
        unit,
        "--kind",
        kind,
        "--name",
        name,
        "--key",
        &key,
        "--valid-days",
        &days,
        "--out",
        p(&file),
    ]);
    ok(&["cert", "install", "--data-dir", p(child), p(&file)]);
}

pub fn tree() -> Tree {
    let tmp = tempfile::tempdir().unwrap();
    let district = tmp.path().join("district");
    let street = tmp.path().join("street");
    let community = tmp.path().join("community");
    let d = init(
        &district,
        "320106000000",
        "district",
        "南京市鼓楼区",
        None,
        None,
    );
    let root = d["trust_root"].as_str().unwrap().to_owned();
    assert_eq!(
        d["certified"], true,
        "a district certifies itself with its root key"
    );
    assert_ne!(
        root,
        d["public_key"].as_str().unwrap(),
        "root key ≠ district node key"
    );
    init(
        &street,
        "320106002000",
        "street",
        "宁海路街道",
        Some("320106000000"),
        Some(&root),
    );
    enrol(&district, &street, "320106002000", "street", "宁海路街道");
    init(
        &community,
        "320106002001",
        "community",
        "颐和路社区",
        Some("320106002000"),
        Some(&root),
    );
    enrol(
        &street,
        &community,
        "320106002001",
        "community",
        "颐和路社区",
    );
    Tree {
        _tmp: tmp,
        district,
        street,
        community,
        root,
    }
}
