//! `--egregore URL`: the egregore relay's `api_clients` table, read directly from its
//! PostgreSQL database (every row, in one statement).
//!
//! Each row becomes an `eg` key without a lookup (that system bcrypt-checks every enabled
//! row): owner its `client_id` (or, with `--user-from name`, its `name`), `source_id` its `id`,
//! its scopes as stored (`TEXT[]`; NULL is none), `rate_limit` as requests per minute (NULL is
//! none), `enabled` (NULL counts as disabled: that system only accepts `enabled = TRUE`), and
//! its expiry, creation and last-use times.

use serde_json::{Map, Value};

use super::input::{bcrypt_hash, timestamp, InputError, Parsed, Place, Problem};
use super::ImportedKey;

/// The key tag of that system (`eg_` keys).
pub const TAG: &str = "eg";
/// Its table.
#[cfg(feature = "postgres")]
const TABLE: &str = "api_clients";

/// Who owns an imported key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The row's `client_id` (the default).
    ClientId,
    /// The row's `name` (`--user-from name`); the key is then named by its `client_id`.
    Name,
}

/// The rows of `api_clients` at `url`, each as a JSON object.
///
/// # Errors
/// The URL cannot be read, the server cannot be reached or refuses the login, or the table
/// is missing or may not be read.
#[cfg(feature = "postgres")]
pub fn read(url: &str) -> Result<Vec<String>, keyseal::Error> {
    keyseal::postgres::read_table_json(url, TABLE)
}

/// The keys of `api_clients` rows (each a JSON object, as [`read`] gives them).
///
/// # Errors
/// A row without `id`, `client_id` or `api_key_hash`; a hash that is not bcrypt; scopes that
/// are not an array of strings; a `rate_limit` that is not a positive number; a time that is
/// not ISO-8601 (`infinity` included); with [`Owner::Name`], a row without a name.
pub fn parse(rows: &[String], owner: Owner) -> Result<Parsed, InputError> {
    let mut parsed = Parsed::default();
    for (i, row) in rows.iter().enumerate() {
        let value: Value = serde_json::from_str(row).map_err(|e| {
            InputError::new(
                Place::Row(format!("? (row {})", i + 1)),
                Problem::NotJson { column: e.column() },
            )
        })?;
        let Value::Object(row) = value else {
            return Err(InputError::new(
                Place::Row(format!("? (row {})", i + 1)),
                Problem::Shape("not a JSON object"),
            ));
        };
        let id = match row.get("id") {
            Some(Value::Number(n)) => n.to_string(),
            Some(Value::String(s)) => s.clone(),
            _ => {
                return Err(InputError::new(
                    Place::Row(format!("? (row {})", i + 1)),
                    Problem::Missing("id"),
                ))
            }
        };
        let at = Place::Row(id.clone());
        let key = parse_row(&at, id, &row, owner)?;
        parsed.push(at, key);
    }
    parsed.check_unique_source_ids()?;
    Ok(parsed)
}

fn parse_row(
    at: &Place,
    id: String,
    row: &Map<String, Value>,
    owner: Owner,
) -> Result<ImportedKey, InputError> {
    let text = |name: &'static str| -> Result<Option<String>, InputError> {
        match row.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(InputError::invalid(at, name, "text or NULL")),
        }
    };
    let time = |name: &'static str| match text(name)? {
        Some(t) => timestamp(at, name, &t),
        None => Ok(None),
    };
    let client_id = text("client_id")?
        .filter(|c| !c.is_empty())
        .ok_or_else(|| InputError::new(at.clone(), Problem::Missing("client_id")))?;
    let name = text("name")?.filter(|n| !n.is_empty());
    let (user_id, name) = match owner {
        Owner::ClientId => (client_id.clone(), name.unwrap_or(client_id)),
        Owner::Name => (
            name.ok_or_else(|| InputError::new(at.clone(), Problem::Missing("name")))?,
            client_id,
        ),
    };
    let hash = text("api_key_hash")?
        .ok_or_else(|| InputError::new(at.clone(), Problem::Missing("api_key_hash")))?;
    let scopes = match row.get("scopes") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| InputError::invalid(at, "scopes", "an array of text"))?,
        Some(_) => return Err(InputError::invalid(at, "scopes", "an array of text")),
    };
    let rate_limit = match row.get("rate_limit") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .filter(|n| *n > 0)
                .map(keyseal::RateLimit::per_minute)
                .ok_or_else(|| {
                    InputError::invalid(
                        at,
                        "rate_limit",
                        "a positive number of requests per minute",
                    )
                })?,
        ),
        Some(_) => {
            return Err(InputError::invalid(
                at,
                "rate_limit",
                "a positive number of requests per minute",
            ))
        }
    };
    let enabled = match row.get("enabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(InputError::invalid(at, "enabled", "a boolean")),
    };
    Ok(ImportedKey {
        source_id: Some(id),
        user_id,
        name,
        scopes,
        tag: TAG.to_owned(),
        lookup: None,
        bcrypt_hash: bcrypt_hash(at, "api_key_hash", &hash)?,
        expires_at: time("expires_at")?,
        enabled,
        created_at: time("created_at")?,
        last_used_at: time("last_used_at")?,
        rate_limit,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

    /// A row as `row_to_json` writes one.
    fn row() -> Value {
        json!({
            "id": 7,
            "client_id": "client_0123456789abcdef",
            "api_key_hash": HASH,
            "name": "Relay bot",
            "scopes": ["chat", "history"],
            "rate_limit": 100,
            "enabled": true,
            "expires_at": null,
            "created_at": "2026-02-02T19:54:40.123456+00:00",
            "last_used_at": "2026-02-03T08:00:00+01:00"
        })
    }

    fn rows(values: &[Value]) -> Vec<String> {
        values.iter().map(Value::to_string).collect()
    }

    #[test]
    fn a_row_becomes_an_eg_key_owned_by_its_client() {
        let parsed = parse(&rows(&[row()]), Owner::ClientId).unwrap();
        let key = &parsed.keys[0];
        assert_eq!(key.source_id.as_deref(), Some("7"));
        assert_eq!(key.user_id, "client_0123456789abcdef");
        assert_eq!(key.name, "Relay bot");
        assert_eq!(key.tag, "eg");
        assert_eq!(key.lookup, None);
        assert_eq!(key.scopes, ["chat", "history"]);
        assert_eq!(key.rate_limit.unwrap().to_string(), "100/min");
        assert!(key.enabled);
        assert_eq!(key.expires_at, None);
        assert_eq!(
            key.created_at.unwrap().to_string(),
            "2026-02-02T19:54:40.123Z"
        );
        assert_eq!(
            key.last_used_at.unwrap().to_string(),
            "2026-02-03T07:00:00Z"
        );
        assert_eq!(parsed.places, [Place::Row("7".into())]);
    }

    #[test]
    fn nulls_read_as_that_system_reads_them() {
        let mut r = row();
        for column in ["name", "scopes", "rate_limit", "enabled"] {
            r[column] = Value::Null;
        }
        let key = &parse(&rows(&[r]), Owner::ClientId).unwrap().keys[0];
        assert_eq!(key.name, "client_0123456789abcdef");
        assert!(key.scopes.is_empty());
        assert_eq!(key.rate_limit, None);
        // Its lookup only accepts `enabled = TRUE`.
        assert!(!key.enabled);
    }

    #[test]
    fn user_from_name_makes_the_name_the_owner() {
        let key = &parse(&rows(&[row()]), Owner::Name).unwrap().keys[0];
        assert_eq!(key.user_id, "Relay bot");
        assert_eq!(key.name, "client_0123456789abcdef");
        let mut r = row();
        r["name"] = Value::Null;
        let err = parse(&rows(&[r]), Owner::Name).map(|_| ()).unwrap_err();
        assert_eq!(err.to_string(), "row id 7: `name` is missing");
    }

    #[test]
    fn bad_rows_are_named_by_id_without_their_hashes() {
        let error = |r: Value| {
            parse(&rows(&[row(), r]), Owner::ClientId)
                .map(|_| ())
                .unwrap_err()
                .to_string()
        };
        let mut r = row();
        r["id"] = json!(8);
        r["api_key_hash"] = json!("sha256:abcdef");
        let got = error(r);
        assert!(
            got.starts_with("row id 8: `api_key_hash` must be a bcrypt hash"),
            "{got}"
        );
        assert!(!got.contains("abcdef"));
        let mut r = row();
        r["id"] = json!(9);
        r["rate_limit"] = json!(0);
        assert!(error(r).starts_with("row id 9: `rate_limit` must be a positive number"));
        let mut r = row();
        r["id"] = json!(10);
        r["expires_at"] = json!("infinity");
        assert!(error(r).starts_with("row id 10: `expires_at` must be an ISO-8601 time"));
        assert_eq!(error(row()), "row id 7: the same source id as row id 7");
        let mut r = row();
        r.as_object_mut().unwrap().remove("id");
        assert_eq!(error(r), "row id ? (row 2): `id` is missing");
    }
}
