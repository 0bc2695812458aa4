//! API keys by role at the HTTP edge: the API (`POST /requests`, `GET /requests…`) and the
//! gateway's endpoints (`POST /gateway/token`, `POST /gateway/execute`) each need a key of
//! the right role — the original's REQUEST / READ / DECIDE split, as `submit`, `read`,
//! `decide`.
//!
//! Keys live in the file named by `WINGMAN_API_KEYS_FILE` as SHA-256 hashes, never as the
//! keys themselves (`wingman apikey` makes a key and its entry). A presented key is hashed and
//! compared with every entry in constant time. There is no "no keys" mode: without the file
//! the API and the gateway refuse to start (fail closed); `scripts/dev` writes a local key
//! file and passes it like production does. `/health` stays open; `/metrics` on the API and
//! gateway ports needs a `read` key (Prometheus scrapes the unpublished ops ports instead).
//!
//! [`guard`] is the axum middleware: a missing, unknown or wrong-role key gets 401 with a
//! JSON body and an `access_denied` audit event (route and reason, never the key).

pub mod guard;
pub mod throttle;

use std::path::Path;
use std::sync::Arc;

use anyhow::Context as _;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The environment variable naming the key file.
pub const KEYS_FILE_VAR: &str = "WINGMAN_API_KEYS_FILE";

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Submit requests (`POST /requests`), and, on the gateway, fetch the token of an
    /// approved request and execute it: what a requester does.
    Submit,
    /// Read requests, their status and the metrics.
    Read,
    /// Approve or reject requests.
    Decide,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Submit => "submit",
            Role::Read => "read",
            Role::Decide => "decide",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = anyhow::Error;

    fn from_str(text: &str) -> anyhow::Result<Self> {
        match text {
            "submit" => Ok(Role::Submit),
            "read" => Ok(Role::Read),
            "decide" => Ok(Role::Decide),
            other => anyhow::bail!("unknown role `{other}` (use submit, read or decide)"),
        }
    }
}

/// The name of the key a call was let through with (an axum request extension set by
/// [`guard::check`]): the authenticated principal of the call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyName(pub String);

/// The configured keys (cheap to clone).
#[derive(Clone)]
pub struct ApiKeys {
    entries: Arc<Vec<KeyEntry>>,
}

struct KeyEntry {
    name: String,
    hash: [u8; 32],
    roles: Vec<Role>,
}

/// Why a call was refused (also the `reason` of the audit event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    Missing,
    Invalid,
    /// A valid key without the role the route needs; `key` is the entry's name.
    WrongRole {
        key: String,
    },
}

impl Denied {
    pub fn code(&self) -> &'static str {
        match self {
            Denied::Missing => "missing_api_key",
            Denied::Invalid => "invalid_api_key",
            Denied::WrongRole { .. } => "wrong_role",
        }
    }
}

/// The key file: `[[key]]` tables with `name`, `sha256` (hex of the key's SHA-256) and `roles`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    #[serde(default)]
    key: Vec<KeyFileEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFileEntry {
    name: String,
    sha256: String,
    roles: Vec<Role>,
}

impl ApiKeys {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("{KEYS_FILE_VAR}: cannot read {}", path.display()))?;
        Self::parse(&text).with_context(|| format!("{KEYS_FILE_VAR}: {}", path.display()))
    }

    pub fn parse(text: &str) -> anyhow::Result<Self> {
        let file: KeyFile = toml::from_str(text).context("not a valid API key file")?;
        anyhow::ensure!(
            !file.key.is_empty(),
            "no keys: add one with `wingman apikey --name … --role …`"
        );
        let mut entries = Vec::with_capacity(file.key.len());
        for entry in file.key {
            let hash: [u8; 32] = hex::decode(entry.sha256.trim())
                .ok()
                .and_then(|bytes| bytes.try_into().ok())
                .with_context(|| format!("key `{}`: sha256 must be 64 hex digits", entry.name))?;
            anyhow::ensure!(!entry.roles.is_empty(), "key `{}` has no roles", entry.name);
            // The name is the principal of what the key submits (`api:<name>`).
            crate::principal::check_name(&entry.name)
                .map_err(|problem| anyhow::anyhow!("key name: {problem}"))?;
            entries.push(KeyEntry {
                name: entry.name,
                hash,
                roles: entry.roles,
            });
        }
        Ok(Self {
            entries: Arc::new(entries),
        })
    }

    /// Keys given in code (tests): `(name, key, roles)`.
    pub fn from_keys(keys: &[(&str, &str, &[Role])]) -> Self {
        let entries = keys
            .iter()
            .map(|(name, key, roles)| KeyEntry {
                name: (*name).to_string(),
                hash: Sha256::digest(key.as_bytes()).into(),
                roles: roles.to_vec(),
            })
            .collect();
        Self {
            entries: Arc::new(entries),
        }
    }

    /// Checks `presented` for `role`; returns the key's name.
    ///
    /// The presented key is hashed and compared with every entry in constant time, without
    /// stopping at a match, so timing tells nothing about which hash came close.
    pub fn check(&self, presented: Option<&str>, role: Role) -> Result<&str, Denied> {
        let presented = presented.ok_or(Denied::Missing)?;
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found: Option<&KeyEntry> = None;
        for entry in self.entries.iter() {
            if bool::from(entry.hash.ct_eq(&hash)) {
                found = Some(entry);
            }
        }
        let entry = found.ok_or(Denied::Invalid)?;
        if entry.roles.contains(&role) {
            Ok(&entry.name)
        } else {
            Err(Denied::WrongRole {
                key: entry.name.clone(),
            })
        }
    }
}

/// A new random key: `wmk_` and 64 hex digits (two UUID v4s, from the OS's random source).
pub fn generate_key() -> String {
    let mut bytes = Vec::with_capacity(32);
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    bytes.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
    format!("wmk_{}", hex::encode(bytes))
}

/// The hex SHA-256 of a key, as the key file stores it.
pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// The key file entry for `key` (the key itself is not in it).
pub fn entry_toml(name: &str, key: &str, roles: &[Role]) -> String {
    let roles: Vec<String> = roles
        .iter()
        .map(|role| format!("\"{}\"", role.as_str()))
        .collect();
    format!(
        "[[key]]\nname = {}\nsha256 = \"{}\"\nroles = [{}]\n",
        toml::Value::String(name.to_string()),
        hash_key(key),
        roles.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_file_maps_hashes_to_roles_and_checks_them() {
        let key = generate_key();
        let text = entry_toml("ci", &key, &[Role::Submit, Role::Read]);
        assert!(!text.contains(&key), "the file must not hold the key");
        let keys = ApiKeys::parse(&text).unwrap();
        assert_eq!(keys.check(Some(&key), Role::Submit), Ok("ci"));
        assert_eq!(keys.check(Some(&key), Role::Read), Ok("ci"));
        assert_eq!(
            keys.check(Some(&key), Role::Decide),
            Err(Denied::WrongRole { key: "ci".into() })
        );
        assert_eq!(
            keys.check(Some("wmk_nope"), Role::Read),
            Err(Denied::Invalid)
        );
        assert_eq!(keys.check(None, Role::Read), Err(Denied::Missing));
    }

    #[test]
    fn an_empty_or_broken_key_file_is_refused() {
        assert!(ApiKeys::parse("").is_err());
        assert!(
            ApiKeys::parse("[[key]]\nname = \"a\"\nsha256 = \"abc\"\nroles = [\"read\"]\n")
                .is_err()
        );
        assert!(
            ApiKeys::parse(&entry_toml("a", "k", &[Role::Read]).replace("read", "admin")).is_err()
        );
    }

    #[test]
    fn generated_keys_are_long_and_different() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 4 + 64);
    }
}
