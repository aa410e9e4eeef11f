//! Secret key files: `gongjian-secret-v1 <64 hex>\n`, mode 0600, refused when
//! group or others may read them.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::KeyFileError;
use crate::key::Secret;

const HEADER: &str = "gongjian-secret-v1 ";

/// Writes a new key file with mode 0600; never overwrites an existing file.
pub fn write_secret(path: &Path, secret: &Secret) -> Result<(), KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyFileError::Exists {
                    path: path.to_owned(),
                }
            } else {
                io(e)
            }
        })?;
    let text = Zeroizing::new(format!("{HEADER}{}\n", hex::encode(secret.seed())));
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    Ok(())
}

/// Reads a key file, refusing it when group or others have any access.
pub fn read_secret(path: &Path) -> Result<Secret, KeyFileError> {
    let io = |source| KeyFileError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = fs::metadata(path).map_err(io)?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyFileError::Permissions {
            path: path.to_owned(),
            mode,
        });
    }
    let text = Zeroizing::new(fs::read_to_string(path).map_err(io)?);
    let format = |reason| KeyFileError::Format {
        path: path.to_owned(),
        reason,
    };
    let hexpart = text
        .trim_end()
        .strip_prefix(HEADER)
        .ok_or_else(|| format("missing header"))?;
    let mut seed = Zeroizing::new([0u8; 32]);
    hex::decode_to_slice(hexpart, seed.as_mut()).map_err(|_| format("bad hex"))?;
    Ok(Secret::from_seed(*seed))
}
