//! Versioned values: one version byte, then the payload.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::StoreError;

pub(crate) const VALUE_V1: u8 = 1;

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    let mut out = vec![VALUE_V1];
    postcard::to_io(value, &mut out).unwrap_or_else(|_| unreachable!("in-memory encoding"));
    out
}

pub(crate) fn decode<T: DeserializeOwned>(cf: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    let payload = unwrap_version(cf, bytes)?;
    postcard::from_bytes(payload).map_err(|e| StoreError::Corrupt {
        cf,
        reason: e.to_string(),
    })
}

pub(crate) fn wrap(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 1);
    out.push(VALUE_V1);
    out.extend_from_slice(payload);
    out
}

pub(crate) fn unwrap_version<'a>(
    cf: &'static str,
    bytes: &'a [u8],
) -> Result<&'a [u8], StoreError> {
    match bytes.split_first() {
        Some((&VALUE_V1, rest)) => Ok(rest),
        Some((&version, _)) => Err(StoreError::Version { cf, version }),
        None => Err(StoreError::Corrupt {
            cf,
            reason: "empty value".into(),
        }),
    }
}
