//! Request ids as people type them: the full UUID, or a unique prefix of it (like git's short
//! hashes: `wingman status 0190a3f2`). A prefix is looked up in `approval_requests` (so it
//! needs `DATABASE_URL`) as a range of the primary key, never a scan; an ambiguous one lists
//! the candidates.

use std::str::FromStr;

use uuid::Uuid;

use crate::envelope::RequestId;

/// The shortest prefix accepted: shorter ones match too much to be worth a lookup.
pub const MIN_PREFIX: usize = 4;

/// What the user typed for a request id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdArg {
    Full(RequestId),
    Prefix(String),
}

impl FromStr for IdArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(id) = text.parse::<RequestId>() {
            return Ok(Self::Full(id));
        }
        let hex: String = text.chars().filter(|c| *c != '-').collect();
        if hex.len() < MIN_PREFIX || hex.len() >= 32 || !hex.chars().all(|c| c.is_ascii_hexdigit())
        {
            return Err(format!(
                "`{text}` is not a request id: give the full id or at least {MIN_PREFIX} of its first hex digits"
            ));
        }
        Ok(Self::Prefix(hex.to_ascii_lowercase()))
    }
}

/// The ids that start with `hex`: from `hex` padded with 0s to `hex` padded with fs.
pub fn prefix_range(hex: &str) -> (Uuid, Uuid) {
    let pad = |fill: char| {
        let mut digits = hex.to_string();
        while digits.len() < 32 {
            digits.push(fill);
        }
        Uuid::parse_str(&digits).unwrap_or_default()
    };
    (pad('0'), pad('f'))
}

impl IdArg {
    /// The full id: itself, or the one request whose id starts with the prefix.
    ///
    /// # Errors
    /// When no request or more than one starts with the prefix (the message lists them), or
    /// Postgres cannot be asked.
    pub async fn resolve(
        &self,
        pool: impl FnOnce() -> anyhow::Result<sqlx::PgPool>,
    ) -> anyhow::Result<RequestId> {
        let hex = match self {
            Self::Full(id) => return Ok(*id),
            Self::Prefix(hex) => hex,
        };
        let pool = pool().map_err(|error| {
            anyhow::anyhow!(
                "a short id needs DATABASE_URL to look it up ({error:#}); or give the full id"
            )
        })?;
        let (low, high) = prefix_range(hex);
        let found = crate::store::requests::ids_between(&pool, low, high, 5)
            .await
            .map_err(|error| anyhow::anyhow!("look up the short id `{hex}`: {error}"))?;
        match found.as_slice() {
            [] => anyhow::bail!("no request id starts with `{hex}`"),
            [one] => Ok(RequestId::from_uuid(*one)),
            many => {
                let listed: Vec<String> = many.iter().map(Uuid::to_string).collect();
                anyhow::bail!(
                    "the short id `{hex}` is ambiguous; it starts {}{}: type more of it",
                    listed.join(", "),
                    if many.len() == 5 { ", …" } else { "" }
                )
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_id_or_a_hex_prefix_is_accepted_and_anything_else_says_what_is_expected() {
        let id = RequestId::generate();
        assert_eq!(id.to_string().parse::<IdArg>(), Ok(IdArg::Full(id)));
        assert_eq!(
            "0190A3f2".parse::<IdArg>(),
            Ok(IdArg::Prefix("0190a3f2".into()))
        );
        assert_eq!(
            "0190a3f2-7b".parse::<IdArg>(),
            Ok(IdArg::Prefix("0190a3f27b".into()))
        );
        for wrong in ["019", "zz19a3", "0190 a3", ""] {
            let error = wrong.parse::<IdArg>().unwrap_err();
            assert!(error.contains("at least 4"), "{wrong}: {error}");
        }
    }

    #[test]
    fn a_prefix_covers_exactly_the_ids_that_start_with_it() {
        let (low, high) = prefix_range("0190a3f2");
        assert_eq!(low.to_string(), "0190a3f2-0000-0000-0000-000000000000");
        assert_eq!(high.to_string(), "0190a3f2-ffff-ffff-ffff-ffffffffffff");
        let inside = Uuid::parse_str("0190a3f2-1234-7000-8000-000000000001").unwrap();
        let outside = Uuid::parse_str("0190a3f3-0000-7000-8000-000000000001").unwrap();
        assert!(low <= inside && inside <= high);
        assert!(!(low <= outside && outside <= high));
    }
}
