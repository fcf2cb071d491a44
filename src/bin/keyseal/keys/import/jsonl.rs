//! `--jsonl FILE`: one JSON object per line with exactly the fields in [`FIELDS`]; blank lines
//! are skipped. Every line is checked before anything is imported; the first bad one refuses
//! the import, named by its line number.

use serde_json::{Map, Value};

use super::input::{
    bcrypt_hash, is_lookup, is_tag, rate_limit, timestamp, InputError, Parsed, Place, Problem,
};
use super::ImportedKey;

/// The fields a line may have; the first five are required.
pub const FIELDS: [&str; 12] = [
    "user_id",
    "name",
    "scopes",
    "tag",
    "bcrypt_hash",
    "lookup",
    "expires_at",
    "enabled",
    "created_at",
    "last_used_at",
    "rate_limit",
    "source_id",
];

/// The keys of a JSONL text.
///
/// # Errors
/// The first line that is not JSON, not an object, has an unknown field, lacks a required one,
/// or holds a value of the wrong kind (a bad hash, time, tag, lookup or rate limit); or a
/// source id given on two lines.
pub fn parse(text: &str) -> Result<Parsed, InputError> {
    let mut parsed = Parsed::default();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let at = Place::Line(i + 1);
        let key = parse_line(&at, line)?;
        parsed.push(at, key);
    }
    parsed.check_unique_source_ids()?;
    Ok(parsed)
}

fn parse_line(at: &Place, line: &str) -> Result<ImportedKey, InputError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| InputError::new(at.clone(), Problem::NotJson { column: e.column() }))?;
    let Value::Object(fields) = value else {
        return Err(InputError::new(
            at.clone(),
            Problem::Shape("not a JSON object"),
        ));
    };
    if let Some(unknown) = fields.keys().find(|k| !FIELDS.contains(&k.as_str())) {
        return Err(InputError::new(
            at.clone(),
            Problem::UnknownField(unknown.clone()),
        ));
    }
    let f = Fields {
        at,
        fields: &fields,
    };
    let user_id = f.required_text("user_id")?;
    if user_id.is_empty() {
        return Err(InputError::invalid(at, "user_id", "a non-empty string"));
    }
    let tag = f.required_text("tag")?;
    if !is_tag(&tag) {
        return Err(InputError::invalid(
            at,
            "tag",
            "the text before the key's `_` (ASCII letters, digits and `_`, e.g. \"mhu\")",
        ));
    }
    let lookup = f.text("lookup")?;
    if lookup.as_deref().is_some_and(|l| !is_lookup(l)) {
        return Err(InputError::invalid(
            at,
            "lookup",
            "1 to 64 url-safe characters (the key's characters right after the tag's `_`) or null",
        ));
    }
    let scopes = match fields.get("scopes") {
        None | Some(Value::Null) => {
            return Err(InputError::new(at.clone(), Problem::Missing("scopes")))
        }
        Some(Value::Array(items)) => items
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| InputError::invalid(at, "scopes", "an array of strings"))?,
        Some(_) => return Err(InputError::invalid(at, "scopes", "an array of strings")),
    };
    let enabled = match fields.get("enabled") {
        None | Some(Value::Null) => true,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(InputError::invalid(at, "enabled", "true or false")),
    };
    let source_id = match fields.get("source_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        // Row ids are often integers.
        Some(Value::Number(n)) if n.is_u64() || n.is_i64() => Some(n.to_string()),
        Some(_) => {
            return Err(InputError::invalid(
                at,
                "source_id",
                "a non-empty string, an integer or null",
            ))
        }
    };
    Ok(ImportedKey {
        source_id,
        user_id,
        name: f.required_text("name")?,
        scopes,
        tag,
        lookup,
        bcrypt_hash: bcrypt_hash(at, "bcrypt_hash", &f.required_text("bcrypt_hash")?)?,
        expires_at: f.time("expires_at")?,
        enabled,
        created_at: f.time("created_at")?,
        last_used_at: f.time("last_used_at")?,
        rate_limit: f
            .text("rate_limit")?
            .map(|r| rate_limit(at, "rate_limit", &r))
            .transpose()?,
    })
}

/// One line's fields, read with messages naming the line and the field.
struct Fields<'a> {
    at: &'a Place,
    fields: &'a Map<String, Value>,
}

impl Fields<'_> {
    /// A string or null (or absent).
    fn text(&self, name: &'static str) -> Result<Option<String>, InputError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(InputError::invalid(self.at, name, "a string or null")),
        }
    }

    fn required_text(&self, name: &'static str) -> Result<String, InputError> {
        match self.fields.get(name) {
            None | Some(Value::Null) => {
                Err(InputError::new(self.at.clone(), Problem::Missing(name)))
            }
            Some(Value::String(s)) => Ok(s.clone()),
            Some(_) => Err(InputError::invalid(self.at, name, "a string")),
        }
    }

    fn time(&self, name: &'static str) -> Result<Option<keyseal::Timestamp>, InputError> {
        match self.text(name)? {
            Some(t) => timestamp(self.at, name, &t),
            None => Ok(None),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$veJQMyqjjdomJgmcHmJoIOenKdyYRvxHOQsT0IZRcS8e1vRvtUpLC";

    fn line(extra: &str) -> String {
        format!(
            r#"{{"user_id":"u1","name":"ci","scopes":["read","write"],"tag":"mhu","bcrypt_hash":"{HASH}"{extra}}}"#
        )
    }

    #[test]
    fn a_full_line_is_read_field_by_field() {
        let text = line(
            r#","lookup":"AbCd-_12","expires_at":"2030-01-01T00:00:00+00:00","enabled":false,"created_at":"2025-01-01T00:00:00.5","last_used_at":null,"rate_limit":"100/min","source_id":"a1""#,
        );
        let parsed = parse(&text).unwrap();
        let key = &parsed.keys[0];
        assert_eq!(key.user_id, "u1");
        assert_eq!(key.name, "ci");
        assert_eq!(key.scopes, ["read", "write"]);
        assert_eq!(key.tag, "mhu");
        assert_eq!(key.lookup.as_deref(), Some("AbCd-_12"));
        assert_eq!(key.bcrypt_hash, HASH);
        assert_eq!(key.expires_at.unwrap().to_string(), "2030-01-01T00:00:00Z");
        assert!(!key.enabled);
        assert_eq!(
            key.created_at.unwrap().to_string(),
            "2025-01-01T00:00:00.500Z"
        );
        assert_eq!(key.last_used_at, None);
        assert_eq!(key.rate_limit.unwrap().to_string(), "100/min");
        assert_eq!(key.source_id.as_deref(), Some("a1"));
        assert_eq!(parsed.places, [Place::Line(1)]);
    }

    #[test]
    fn optional_fields_default_and_blank_lines_are_skipped() {
        let text = format!("\n{}\n   \n{}\n", line(""), line(r#","source_id":7"#));
        let parsed = parse(&text).unwrap();
        assert_eq!(parsed.places, [Place::Line(2), Place::Line(4)]);
        let key = &parsed.keys[0];
        assert!(key.enabled);
        assert_eq!(key.lookup, None);
        assert_eq!(key.expires_at, None);
        assert_eq!(key.rate_limit, None);
        assert_eq!(key.source_id, None);
        assert_eq!(parsed.keys[1].source_id.as_deref(), Some("7"));
    }

    fn error(text: &str) -> String {
        parse(text).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn bad_lines_are_named_by_number_without_their_values() {
        let good = line("");
        let cases = [
            (format!("{good}\n{{\"user_id\": "), "line 2: not JSON"),
            (format!("{good}\n[1]"), "line 2: not a JSON object"),
            (line(r#","owner":"x""#), "line 1: unknown field \"owner\""),
            (
                good.replace(r#""tag":"mhu","#, ""),
                "line 1: `tag` is missing",
            ),
            (
                line(r#","enabled":"yes""#),
                "line 1: `enabled` must be true or false",
            ),
            (
                good.replace(r#"["read","write"]"#, r#""read write""#),
                "line 1: `scopes` must be an array of strings",
            ),
            (
                line(r#","expires_at":"soon""#),
                "line 1: `expires_at` must be an ISO-8601 time",
            ),
            (
                line(r#","rate_limit":"100/day""#),
                "line 1: `rate_limit` must be N/s, N/min or N/h",
            ),
            (good.replace("mhu", "mhu_"), "line 1: `tag` must be"),
            (line(r#","lookup":"a=b""#), "line 1: `lookup` must be"),
            (
                format!(
                    "{}\n{}",
                    line(r#","source_id":"s""#),
                    line(r#","source_id":"s""#)
                ),
                "line 2: the same source id as line 1",
            ),
        ];
        for (text, want) in cases {
            let got = error(&text);
            assert!(got.starts_with(want), "{got:?} should start with {want:?}");
        }
    }

    #[test]
    fn a_bad_hash_names_the_line_and_is_not_echoed() {
        let broken = &HASH[..40];
        let text = format!("{}\n{}", line(""), line("").replace(HASH, broken));
        let got = error(&text);
        assert!(
            got.starts_with("line 2: `bcrypt_hash` must be a bcrypt hash"),
            "{got}"
        );
        assert!(!got.contains(broken));
        // A hash pasted into the wrong field is not echoed either.
        let got = error(&line(&format!(r#","enabled":"{HASH}""#)));
        assert!(!got.contains(HASH), "{got}");
    }
}
