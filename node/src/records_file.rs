//! Files that carry signed records between nodes (certificates with their
//! chain, revocations): `GJREC1\n`, a count (u32 BE), then each record as a
//! length (u32 BE) and its encoding. Checked entirely before anything is used.

use std::fs;
use std::path::Path;

use anyhow::Context;
use gongjian_identity::{MAX_RECORD_BYTES, SignedRecord};

use crate::exit::{Coded, Exit, bail};

const MAGIC: &[u8] = b"GJREC1\n";
const MAX_FILE: u64 = 16 << 20;
const MAX_RECORDS: u32 = 10_000;

pub fn write(path: &Path, records: &[SignedRecord]) -> anyhow::Result<()> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&(records.len() as u32).to_be_bytes());
    for r in records {
        let bytes = r.encode();
        out.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        out.extend_from_slice(&bytes);
    }
    fs::write(path, out)
        .with_context(|| path.display().to_string())
        .code(Exit::Failure)
}

pub fn read(path: &Path) -> anyhow::Result<Vec<SignedRecord>> {
    let what = path.display().to_string();
    let meta = fs::metadata(path)
        .with_context(|| what.clone())
        .code(Exit::BadInput)?;
    if meta.len() > MAX_FILE {
        return bail(
            Exit::BadInput,
            format!(
                "{what}: {} bytes is over the {MAX_FILE}-byte limit",
                meta.len()
            ),
        );
    }
    let bytes = fs::read(path)
        .with_context(|| what.clone())
        .code(Exit::BadInput)?;
    let Some(mut rest) = bytes.strip_prefix(MAGIC) else {
        return bail(
            Exit::BadInput,
            format!("{what}: not a gongjian records file"),
        );
    };
    let mut take = |n: usize, at: &str| -> anyhow::Result<&[u8]> {
        if rest.len() < n {
            return bail(Exit::BadInput, format!("{what}: truncated at {at}"));
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_be_bytes(take(4, "count")?.try_into()?);
    if count > MAX_RECORDS {
        return bail(
            Exit::BadInput,
            format!("{what}: {count} records is over the limit of {MAX_RECORDS}"),
        );
    }
    let mut records = Vec::with_capacity(count as usize);
    for i in 0..count {
        let len = u32::from_be_bytes(take(4, "a record length")?.try_into()?) as usize;
        if len > MAX_RECORD_BYTES {
            return bail(
                Exit::BadInput,
                format!("{what}: record {i} claims {len} bytes"),
            );
        }
        let body = take(len, "a record")?;
        let record = SignedRecord::decode(body)
            .with_context(|| format!("{what}: record {i}"))
            .code(Exit::BadInput)?;
        records.push(record);
    }
    if !rest.is_empty() {
        return bail(
            Exit::BadInput,
            format!("{what}: {} trailing bytes", rest.len()),
        );
    }
    Ok(records)
}
