//! `--keycloak-users FILE`: the Keycloak system's users as its admin API gives them (a JSON
//! array of user representations, or a realm export whose `users` holds that array). Each user
//! keeps its keys in attributes, every value an array of strings:
//! `apiKeys: ["key:ID:HASH", …]` and, per key, `apiKey_ID_name`, `apiKey_ID_created`,
//! `apiKey_ID_expiresAt`, `apiKey_ID_lastUsed`. Other attributes are not read.
//!
//! Each key becomes: owner `user:{username}` (the id that system reports for the key),
//! `source_id` the key id, no scopes, no rate limit, no lookup (that system bcrypt-checks every
//! key of every user), enabled as its user is. Its tag is given by the caller: the hash cannot
//! tell a live key from a test one, and that system's `create_api_key` and `rotate_api_key`
//! only ever make `mcpkey_live_` keys.

use serde_json::{Map, Value};

use super::input::{bcrypt_hash, timestamp, InputError, Parsed, Place, Problem};
use super::ImportedKey;

/// The keys of a Keycloak users export, each tagged `tag`.
///
/// # Errors
/// The input is not JSON or not an array of user objects; a user without a `username`, with
/// an `enabled` that is not a boolean or attributes that are not arrays of strings; an
/// `apiKeys` entry that is not `key:ID:HASH` with a bcrypt hash; a key time that is not
/// ISO-8601; or a key id given twice.
pub fn parse(text: &str, tag: &str) -> Result<Parsed, InputError> {
    let value: Value = serde_json::from_str(text)
        .map_err(|e| InputError::new(Place::Input, Problem::NotJson { column: e.column() }))?;
    let users = match value {
        Value::Array(users) => users,
        // A realm export (`kc.sh export`) holds the same representations under `users`.
        Value::Object(mut realm) => match realm.remove("users") {
            Some(Value::Array(users)) => users,
            _ => return Err(not_users()),
        },
        _ => return Err(not_users()),
    };
    let mut parsed = Parsed::default();
    for (i, user) in users.iter().enumerate() {
        parse_user(i + 1, user, tag, &mut parsed)?;
    }
    parsed.check_unique_source_ids()?;
    Ok(parsed)
}

fn not_users() -> InputError {
    InputError::new(
        Place::Input,
        Problem::Shape(
            "not a JSON array of Keycloak user representations (or a realm export with `users`)",
        ),
    )
}

fn parse_user(
    index: usize,
    user: &Value,
    tag: &str,
    parsed: &mut Parsed,
) -> Result<(), InputError> {
    let mut at = Place::KeycloakUser {
        index,
        username: None,
        key_id: None,
    };
    let Value::Object(user) = user else {
        return Err(InputError::new(at, Problem::Shape("not a JSON object")));
    };
    let username = match user.get("username") {
        Some(Value::String(name)) if !name.is_empty() => name.clone(),
        Some(Value::String(_) | Value::Null) | None => {
            return Err(InputError::new(at, Problem::Missing("username")))
        }
        Some(_) => return Err(InputError::invalid(&at, "username", "a string")),
    };
    at = Place::KeycloakUser {
        index,
        username: Some(username.clone()),
        key_id: None,
    };
    // Keycloak always exports `enabled`; a hand-made file without it gets the default.
    let enabled = match user.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(InputError::invalid(&at, "enabled", "true or false")),
    };
    let empty = Map::new();
    let attributes = match user.get("attributes") {
        None | Some(Value::Null) => &empty,
        Some(Value::Object(attributes)) => attributes,
        Some(_) => return Err(InputError::invalid(&at, "attributes", "an object")),
    };
    let attrs = Attributes {
        at: &at,
        map: attributes,
    };
    for entry in attrs.values("apiKeys")? {
        // As that system reads it: `key:ID:HASH`, and a bcrypt hash has no `:`.
        let parts: Vec<&str> = entry.split(':').collect();
        let [prefix, key_id, hash] = parts[..] else {
            return Err(InputError::invalid(
                &at,
                "apiKeys",
                "a list of \"key:ID:HASH\"",
            ));
        };
        if prefix != "key" || key_id.is_empty() {
            return Err(InputError::invalid(
                &at,
                "apiKeys",
                "a list of \"key:ID:HASH\"",
            ));
        }
        let key_at = Place::KeycloakUser {
            index,
            username: Some(username.clone()),
            key_id: Some(key_id.to_owned()),
        };
        let attrs = Attributes {
            at: &key_at,
            map: attributes,
        };
        let field = |what: &str| format!("apiKey_{key_id}_{what}");
        let time = |what: &str| -> Result<_, InputError> {
            let name = field(what);
            match attrs.first(&name)? {
                Some(text) => timestamp(&key_at, &name, &text),
                None => Ok(None),
            }
        };
        let key = ImportedKey {
            source_id: Some(key_id.to_owned()),
            user_id: format!("user:{username}"),
            // Always set by that system; a key stripped of it is named by its id.
            name: attrs
                .first(&field("name"))?
                .filter(|n| !n.is_empty())
                .unwrap_or_else(|| key_id.to_owned()),
            scopes: Vec::new(),
            tag: tag.to_owned(),
            lookup: None,
            bcrypt_hash: bcrypt_hash(&key_at, "apiKeys", hash)?,
            expires_at: time("expiresAt")?,
            enabled,
            created_at: time("created")?,
            last_used_at: time("lastUsed")?,
            rate_limit: None,
        };
        parsed.push(key_at.clone(), key);
    }
    Ok(())
}

/// A user's attributes, each an array of strings (a lone string is read as one value).
struct Attributes<'a> {
    at: &'a Place,
    map: &'a Map<String, Value>,
}

impl Attributes<'_> {
    fn values(&self, name: &str) -> Result<Vec<String>, InputError> {
        match self.map.get(name) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| InputError::invalid(self.at, name, "an array of strings")),
            Some(_) => Err(InputError::invalid(self.at, name, "an array of strings")),
        }
    }

    fn first(&self, name: &str) -> Result<Option<String>, InputError> {
        Ok(self.values(name)?.into_iter().next())
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";
    const HASH2: &str = "$2b$04$AAJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

    fn export() -> Value {
        json!([
            {
                "id": "2b0c6f1e-0000-4000-8000-000000000001",
                "username": "alice",
                "enabled": true,
                "attributes": {
                    "apiKeys": [format!("key:0a1b2c3d4e5f6071:{HASH}"), format!("key:ffee:{HASH2}")],
                    "apiKey_0a1b2c3d4e5f6071_name": ["Claude Desktop"],
                    "apiKey_0a1b2c3d4e5f6071_created": ["2025-06-01T10:00:00.123456+00:00"],
                    "apiKey_0a1b2c3d4e5f6071_expiresAt": ["2026-06-01T10:00:00.123456+00:00"],
                    "apiKey_0a1b2c3d4e5f6071_lastUsed": ["2025-07-01T00:00:00+00:00"],
                    "apiKey_0a1b2c3d4e5f6071_cacheHash": ["abc"],
                    "department": ["research"]
                }
            },
            { "id": "x", "username": "bob", "enabled": false, "attributes": {
                "apiKeys": [format!("key:b0b:{HASH}")],
                "apiKey_b0b_name": ["ci"],
                "apiKey_b0b_expiresAt": ["2020-01-01T00:00:00"]
            }},
            { "id": "y", "username": "carol", "enabled": true }
        ])
    }

    #[test]
    fn keys_come_from_attributes_with_their_times_and_user_state() {
        let parsed = parse(&export().to_string(), "mcpkey_live").unwrap();
        assert_eq!(parsed.keys.len(), 3);
        let a = &parsed.keys[0];
        assert_eq!(a.user_id, "user:alice");
        assert_eq!(a.source_id.as_deref(), Some("0a1b2c3d4e5f6071"));
        assert_eq!(a.name, "Claude Desktop");
        assert_eq!(a.tag, "mcpkey_live");
        assert_eq!(a.lookup, None);
        assert!(a.scopes.is_empty());
        assert_eq!(a.bcrypt_hash, HASH);
        assert_eq!(
            a.created_at.unwrap().to_string(),
            "2025-06-01T10:00:00.123Z"
        );
        assert_eq!(
            a.expires_at.unwrap().to_string(),
            "2026-06-01T10:00:00.123Z"
        );
        assert_eq!(a.last_used_at.unwrap().to_string(), "2025-07-01T00:00:00Z");
        assert!(a.enabled);
        // No metadata at all: named by its id, no times.
        let second = &parsed.keys[1];
        assert_eq!((second.name.as_str(), second.created_at), ("ffee", None));
        // A disabled user's keys come in disabled; a naive expiry is UTC.
        let b = &parsed.keys[2];
        assert_eq!(b.user_id, "user:bob");
        assert!(!b.enabled);
        assert_eq!(b.expires_at.unwrap().to_string(), "2020-01-01T00:00:00Z");
        assert_eq!(
            parsed.places[2],
            Place::KeycloakUser {
                index: 2,
                username: Some("bob".into()),
                key_id: Some("b0b".into())
            }
        );
        // A realm export holds the same users.
        let realm = json!({ "realm": "mcp", "users": export() });
        assert_eq!(
            parse(&realm.to_string(), "mcpkey_test").unwrap().keys[0].tag,
            "mcpkey_test"
        );
    }

    fn error(value: &Value) -> String {
        parse(&value.to_string(), "mcpkey_live")
            .map(|_| ())
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn bad_users_and_keys_are_named_without_their_hashes() {
        let mut v = export();
        v[1]["attributes"]["apiKeys"][0] = json!(format!("key:b0b:{}", &HASH[..30]));
        let got = error(&v);
        assert_eq!(got, "user 2 (\"bob\"), key \"b0b\": `apiKeys` must be a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 characters)");
        let mut v = export();
        v[0]["attributes"]["apiKeys"][1] = json!(HASH);
        let got = error(&v);
        assert!(
            got.starts_with("user 1 (\"alice\"): `apiKeys` must be a list of \"key:ID:HASH\""),
            "{got}"
        );
        assert!(!got.contains(HASH));
        let mut v = export();
        v[0]["attributes"]["apiKey_0a1b2c3d4e5f6071_expiresAt"] = json!(["next year"]);
        assert!(error(&v).starts_with(
            "user 1 (\"alice\"), key \"0a1b2c3d4e5f6071\": `apiKey_0a1b2c3d4e5f6071_expiresAt` must be an ISO-8601 time"
        ));
        let mut v = export();
        v[2]["username"] = Value::Null;
        assert_eq!(error(&v), "user 3: `username` is missing");
        let mut v = export();
        v[1]["attributes"]["apiKeys"] = json!([format!("key:0a1b2c3d4e5f6071:{HASH}")]);
        assert!(error(&v)
            .ends_with("the same source id as user 1 (\"alice\"), key \"0a1b2c3d4e5f6071\""));
        assert!(error(&json!({"users": 3})).starts_with("input: not a JSON array"));
        assert!(parse("[{", "mcpkey_live")
            .map(|_| ())
            .unwrap_err()
            .to_string()
            .starts_with("input: not JSON"));
    }
}
