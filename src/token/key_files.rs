//! Key files on disk: `<name>.key` (the authority's secret, mode 0600) and `<name>.pub`
//! (the gateway's public key, mode 0644).
//!
//! Each file holds one line of PASERK text (`k4.secret.…` or `k4.public.…`) and a newline;
//! readers trim surrounding whitespace. `wingman keygen` writes the pair; the authority reads
//! the secret from `WINGMAN_SIGNING_KEY_FILE`, the gateway the public key from
//! `WINGMAN_VERIFY_KEY_FILE`. Unix only: permissions are part of the contract.

use std::fs::{File, OpenOptions, Permissions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::token::{KeyError, SigningKey, VerifyKey, generate_keypair};

/// Key text is under 100 bytes; anything much longer is not a key file.
const MAX_KEY_FILE_BYTES: u64 = 4096;
const SECRET_MODE: u32 = 0o600;
const PUBLIC_MODE: u32 = 0o644;

/// Generates a key pair and writes it as `<dir>/<name>.key` and `<dir>/<name>.pub`.
///
/// The secret file is created with mode 0600, so it is never readable by others, not even
/// briefly. Refuses to overwrite either file; if the public file cannot be written, the
/// just-created secret file is removed again. Returns the two paths (secret, public).
pub fn write_keypair(dir: &Path, name: &str) -> Result<(PathBuf, PathBuf), KeyError> {
    check_name(name)?;
    let secret_path = dir.join(format!("{name}.key"));
    let public_path = dir.join(format!("{name}.pub"));
    for path in [&secret_path, &public_path] {
        if path.symlink_metadata().is_ok() {
            return Err(KeyError::AlreadyExists { path: path.clone() });
        }
    }

    let (signing_key, verify_key) = generate_keypair();
    let secret_text = Zeroizing::new(format!("{}\n", signing_key.to_pem_or_text()));
    write_new_file(&secret_path, SECRET_MODE, secret_text.as_bytes())?;
    let public_text = format!("{}\n", verify_key.to_text());
    if let Err(error) = write_new_file(&public_path, PUBLIC_MODE, public_text.as_bytes()) {
        // Best effort: a lone secret key without its public half is of no use to anyone.
        let _ = std::fs::remove_file(&secret_path);
        return Err(error);
    }
    Ok((secret_path, public_path))
}

/// Reads the authority's signing key, refusing a file that group or others can access.
pub fn read_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    // Checked on the open handle, so the file inspected is the file read.
    let mode = file
        .metadata()
        .map_err(io_error("inspect", path))?
        .permissions()
        .mode();
    if mode & 0o077 != 0 {
        return Err(KeyError::InsecurePermissions {
            path: path.to_path_buf(),
            mode: mode & 0o7777,
        });
    }
    let text = read_text(&mut file, path)?;
    SigningKey::from_text(&text)
}

/// Reads the gateway's verification key.
pub fn read_verify_key(path: &Path) -> Result<VerifyKey, KeyError> {
    let mut file = File::open(path).map_err(io_error("open", path))?;
    let text = read_text(&mut file, path)?;
    VerifyKey::from_text(&text)
}

fn check_name(name: &str) -> Result<(), KeyError> {
    let allowed = |character: char| character.is_ascii_alphanumeric() || "-_.".contains(character);
    let valid = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name.chars().all(allowed);
    if valid {
        Ok(())
    } else {
        Err(KeyError::InvalidName {
            name: name.to_owned(),
        })
    }
}

/// Creates `path` (which must not exist) with `mode` and writes `contents` durably.
fn write_new_file(path: &Path, mode: u32, contents: &[u8]) -> Result<(), KeyError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|source| match source.kind() {
            io::ErrorKind::AlreadyExists => KeyError::AlreadyExists {
                path: path.to_path_buf(),
            },
            _ => KeyError::Io {
                action: "create",
                path: path.to_path_buf(),
                source,
            },
        })?;
    if mode == PUBLIC_MODE {
        // The umask may have narrowed the public file's mode, but a public key is meant to
        // be readable. The secret file keeps the mode it was created with: no chmod.
        file.set_permissions(Permissions::from_mode(mode))
            .map_err(io_error("set permissions on", path))?;
    }
    file.write_all(contents).map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("sync", path))
}

fn read_text(file: &mut File, path: &Path) -> Result<Zeroizing<String>, KeyError> {
    // Room for the whole limit up front, so no copy of the key is left behind by a regrowth.
    let mut text = Zeroizing::new(String::with_capacity(MAX_KEY_FILE_BYTES as usize + 1));
    file.take(MAX_KEY_FILE_BYTES)
        .read_to_string(&mut text)
        .map_err(io_error("read", path))?;
    Ok(text)
}

fn io_error(action: &'static str, path: &Path) -> impl FnOnce(io::Error) -> KeyError {
    move |source| KeyError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}
