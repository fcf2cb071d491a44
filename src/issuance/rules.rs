//! The business rules of API keys, as pure decisions over rows: no I/O, no clock reads
//! (`now` is an argument), no locks. Backends apply them inside their write transactions
//! (see `backend.rs`); the verify path and listings use the same definitions.

use super::backend::{InsertContext, Row, Scheme};
use super::time::Timestamp;
use super::types::{KeyStatus, Refusal};
use super::update::KeyUpdate;
use crate::Error;

/// Unix milliseconds standing for "never expires".
pub(crate) const NEVER: i64 = i64::MAX;

/// Most legacy keys one lookup value may have: a wrong key presenting that lookup costs one
/// bcrypt per key under it.
pub(crate) const MAX_LEGACY_PER_LOOKUP: usize = 16;

/// The one definition of validity: why a key revoked or not, disabled or not, expiring at
/// `expires_at_ms` (Unix ms, [`NEVER`] for no expiry), is refused at `now_ms`, or `None` when
/// it is valid. A rotated key is valid until its grace ends, which is its `expires_at`. The
/// order (revoked, expired, disabled) is the one [`Refusal`] documents; rate limits and
/// scopes come after.
#[inline]
pub(crate) fn refusal(
    revoked: bool,
    disabled: bool,
    expires_at_ms: i64,
    now_ms: i64,
) -> Option<Refusal> {
    if revoked {
        Some(Refusal::Revoked)
    } else if expires_at_ms <= now_ms {
        Some(Refusal::Expired)
    } else if disabled {
        Some(Refusal::Disabled)
    } else {
        None
    }
}

impl Row {
    /// Why this key is refused at `now`, or `None` when it is valid.
    pub(crate) fn refusal_at(&self, now: Timestamp) -> Option<Refusal> {
        refusal(
            self.revoked_at.is_some(),
            !self.enabled,
            self.expires_at.map_or(NEVER, Timestamp::unix_millis),
            now.unix_millis(),
        )
    }

    /// What may be said before the secret is checked: revoked or expired (never disabled,
    /// which only a holder of the secret may learn).
    pub(crate) fn refusal_before_secret(&self, now: Timestamp) -> Option<Refusal> {
        refusal(
            self.revoked_at.is_some(),
            false,
            self.expires_at.map_or(NEVER, Timestamp::unix_millis),
            now.unix_millis(),
        )
    }

    /// Whether this key is alive at `now`: neither revoked nor expired. A disabled key is
    /// alive (it can be enabled again), so it counts against the quota.
    pub(crate) fn is_alive_at(&self, now: Timestamp) -> bool {
        self.refusal_before_secret(now).is_none()
    }

    /// The key's state at `now`, for listings.
    pub(crate) fn status_at(&self, now: Timestamp) -> KeyStatus {
        match self.refusal_at(now) {
            Some(Refusal::Revoked) => KeyStatus::Revoked,
            Some(Refusal::Disabled) => KeyStatus::Disabled,
            Some(_) => KeyStatus::Expired,
            None if self.rotated_to.is_some() => KeyStatus::Rotated,
            None => KeyStatus::Active,
        }
    }
}

/// Keys of a user that count against the quota at `now`: alive ones (active, disabled, and
/// rotated ones still in their grace).
fn valid_count(rows: &[Row], now: Timestamp) -> usize {
    rows.iter().filter(|r| r.is_alive_at(now)).count()
}

fn over(count: usize, limit: u32) -> bool {
    u64::try_from(count).unwrap_or(u64::MAX) > u64::from(limit)
}

/// May `new` be inserted next to these rows? `quota`: the most valid keys a user may hold
/// (`None`: no limit; imports pass `None`).
///
/// # Errors
/// [`Error::QuotaExceeded`] when the user already holds `quota` valid keys;
/// [`Error::InvalidArgument`] for a legacy key whose lookup [`MAX_LEGACY_PER_LOOKUP`] legacy
/// keys already share.
pub(crate) fn may_insert(
    new: &Row,
    ctx: &InsertContext,
    quota: Option<u32>,
    now: Timestamp,
) -> Result<(), Error> {
    if let Some(limit) = quota {
        if over(valid_count(&ctx.user_rows, now) + 1, limit) {
            return Err(Error::QuotaExceeded { limit });
        }
    }
    if new.scheme == Scheme::Plain {
        let shared = ctx
            .same_lookup
            .iter()
            .filter(|r| r.scheme == Scheme::Plain)
            .count();
        if shared >= MAX_LEGACY_PER_LOOKUP {
            return Err(Error::InvalidArgument {
                what: format!(
                    "legacy lookup {:?}: already {MAX_LEGACY_PER_LOOKUP} keys share it, the \
                     most one lookup may have",
                    new.lookup
                ),
            });
        }
    }
    Ok(())
}

/// The successor's expiry in a rotation at `now`: the old key's lifetime, from now (an old
/// key that expired 30 days after creation gives a new one that expires 30 days from now).
pub(crate) fn successor_expiry(old: &Row, now: Timestamp) -> Option<Timestamp> {
    old.expires_at.map(|exp| {
        let life = exp
            .unix_millis()
            .saturating_sub(old.created_at.unix_millis());
        Timestamp::from_unix_millis(now.unix_millis().saturating_add(life.max(0)))
    })
}

/// May `old` be rotated at `now` with its validity ending at `grace_end`? Returns when it
/// really ends: `grace_end`, or its own expiry if that comes first (the one place the grace
/// end is computed).
///
/// The old key keeps counting against `quota` during its grace, and a rotation may take the
/// user one key over, never more: a chain of rotations cannot pile keys up.
///
/// # Errors
/// [`Error::InvalidArgument`] when `old` is revoked, already rotated or expired (an expired
/// key would otherwise turn into a new valid one past the quota: create a new key instead);
/// [`Error::QuotaExceeded`] as above.
pub(crate) fn rotation_end(
    old: &Row,
    user_rows: &[Row],
    grace_end: Timestamp,
    quota: Option<u32>,
    now: Timestamp,
) -> Result<Timestamp, Error> {
    let refused = |why: &str| Error::InvalidArgument {
        what: format!("api key {} {why}", old.key_id),
    };
    match old.refusal_at(now) {
        Some(Refusal::Revoked) => return Err(refused("is revoked and cannot be rotated")),
        _ if old.rotated_to.is_some() => return Err(refused("was already rotated")),
        Some(Refusal::Disabled) => return Err(refused("is disabled; enable it first")),
        Some(_) => return Err(refused("has expired; create a new key instead")),
        None => {}
    }
    let ends = old.expires_at.map_or(grace_end, |e| e.min(grace_end));
    if let Some(limit) = quota {
        let in_grace = usize::from(ends > now);
        if over(
            valid_count(user_rows, now) + in_grace,
            limit.saturating_add(1),
        ) {
            return Err(Error::QuotaExceeded { limit });
        }
    }
    Ok(ends)
}

/// What an update of `old` writes, at `now`: `old` with the update's fields, or why not.
/// An update that brings an expired key back to life counts against `quota` as a new key
/// would.
///
/// # Errors
/// [`Error::InvalidArgument`] for a revoked key (nothing about it can change, and it cannot
/// be enabled again), or a new expiry for a rotated key (its expiry is the end of its grace
/// period); [`Error::QuotaExceeded`] as above.
pub(crate) fn updated_row(
    old: &Row,
    user_rows: &[Row],
    update: &KeyUpdate,
    quota: Option<u32>,
    now: Timestamp,
) -> Result<Row, Error> {
    let refused = |why: &str| Error::InvalidArgument {
        what: format!("api key {} {why}", old.key_id),
    };
    if old.revoked_at.is_some() {
        return Err(refused(if update.enabled == Some(true) {
            "is revoked and cannot be enabled again"
        } else {
            "is revoked and cannot be changed"
        }));
    }
    if update.expires_at.is_some() && old.rotated_to.is_some() {
        return Err(refused(
            "was rotated: its expiry is the end of its grace period (revoke it to end it now)",
        ));
    }
    let mut new = old.clone();
    update.apply_to(&mut new);
    if let Some(limit) = quota {
        if !old.is_alive_at(now) && new.is_alive_at(now) {
            let others = user_rows.iter().filter(|r| r.row_id != old.row_id);
            let alive = others.filter(|r| r.is_alive_at(now)).count();
            if over(alive + 1, limit) {
                return Err(Error::QuotaExceeded { limit });
            }
        }
    }
    Ok(new)
}

/// Most bytes a key's metadata may take, serialized as compact JSON.
pub const MAX_METADATA_BYTES: usize = 4096;

/// Metadata must be a JSON object of at most [`MAX_METADATA_BYTES`] serialized.
///
/// # Errors
/// [`Error::InvalidArgument`] for anything else.
pub(crate) fn check_metadata(
    v: serde_json::Value,
) -> Result<serde_json::Map<String, serde_json::Value>, Error> {
    let serde_json::Value::Object(map) = v else {
        return Err(Error::InvalidArgument {
            what: "metadata: must be a JSON object".into(),
        });
    };
    let len = serde_json::to_string(&map).map_or(usize::MAX, |s| s.len());
    if len > MAX_METADATA_BYTES {
        return Err(Error::InvalidArgument {
            what: format!("metadata: {len} bytes serialized, at most {MAX_METADATA_BYTES}"),
        });
    }
    Ok(map)
}

/// Most scopes one key may have.
pub(crate) const MAX_SCOPES: usize = 64;

/// `v` is 1 to `max` bytes with no control characters (and no whitespace unless `spaces`).
pub(crate) fn check_text(what: &str, v: &str, max: usize, spaces: bool) -> Result<(), Error> {
    let ok = !v.is_empty()
        && v.len() <= max
        && !v
            .chars()
            .any(|c| c.is_control() || (!spaces && c.is_whitespace()));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidArgument {
            what: format!(
                "{what}: 1 to {max} bytes, no control characters{}",
                if spaces { "" } else { " or spaces" }
            ),
        })
    }
}

/// The fields every new key has, whether created or imported: the user id (the crate's one
/// user-id rule), a name (1 to 256 bytes), and at most [`MAX_SCOPES`] scopes of 1 to 128
/// bytes without whitespace (scopes are stored space-separated).
///
/// # Errors
/// [`Error::InvalidArgument`] naming the field.
pub(crate) fn check_key_fields(user_id: &str, name: &str, scopes: &[String]) -> Result<(), Error> {
    crate::user_id::check_user_id(user_id)?;
    check_text("name", name, 256, true)?;
    if scopes.len() > MAX_SCOPES {
        return Err(Error::InvalidArgument {
            what: format!("at most {MAX_SCOPES} scopes"),
        });
    }
    for s in scopes {
        check_text("scope", s, 128, false)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::issuance::format::Environment;

    const NOW: i64 = 1_000_000;

    fn at(ms: i64) -> Timestamp {
        Timestamp::from_unix_millis(ms)
    }

    fn row(key_id: &str) -> Row {
        Row {
            row_id: 0,
            key_id: key_id.into(),
            lookup: key_id.into(),
            scheme: Scheme::Prehashed,
            hash: String::new(),
            user_id: "u".into(),
            name: "n".into(),
            scopes: vec![],
            environment: Environment::Live,
            created_at: at(NOW - 1000),
            expires_at: None,
            revoked_at: None,
            rotated_to: None,
            rate_limit: None,
            last_used_at: None,
            enabled: true,
            metadata: serde_json::Map::new(),
            verifier_tag: None,
            source: None,
            source_id: None,
        }
    }

    fn ctx(user_rows: Vec<Row>, same_lookup: Vec<Row>) -> InsertContext {
        InsertContext {
            user_rows,
            same_lookup,
        }
    }

    #[test]
    fn validity_and_status() {
        let mut r = row("a");
        assert_eq!(r.status_at(at(NOW)), KeyStatus::Active);
        r.rotated_to = Some("b".into());
        r.expires_at = Some(at(NOW + 1));
        assert_eq!(r.status_at(at(NOW)), KeyStatus::Rotated);
        r.enabled = false;
        assert_eq!(r.status_at(at(NOW)), KeyStatus::Disabled);
        assert_eq!(r.refusal_before_secret(at(NOW)), None);
        assert_eq!(r.status_at(at(NOW + 1)), KeyStatus::Expired);
        r.revoked_at = Some(at(NOW));
        assert_eq!(r.status_at(at(NOW)), KeyStatus::Revoked);
        assert_eq!(refusal(false, false, NEVER, i64::MAX - 1), None);
        assert_eq!(refusal(false, true, NOW, NOW), Some(Refusal::Expired));
    }

    #[test]
    fn quota_counts_valid_keys_only() {
        let new = row("new");
        let mut rows: Vec<Row> = (0..2).map(|i| row(&format!("k{i}"))).collect();
        assert!(may_insert(&new, &ctx(rows.clone(), vec![]), Some(3), at(NOW)).is_ok());
        assert!(may_insert(&new, &ctx(rows.clone(), vec![]), None, at(NOW)).is_ok());
        assert_eq!(
            may_insert(&new, &ctx(rows.clone(), vec![]), Some(2), at(NOW)),
            Err(Error::QuotaExceeded { limit: 2 })
        );
        rows[0].revoked_at = Some(at(NOW));
        rows[1].expires_at = Some(at(NOW));
        assert!(may_insert(&new, &ctx(rows, vec![]), Some(1), at(NOW)).is_ok());
    }

    #[test]
    fn legacy_lookup_is_capped() {
        let mut new = row("new");
        new.scheme = Scheme::Plain;
        let mut shared: Vec<Row> = (0..MAX_LEGACY_PER_LOOKUP).map(|_| new.clone()).collect();
        assert!(matches!(
            may_insert(&new, &ctx(vec![], shared.clone()), None, at(NOW)),
            Err(Error::InvalidArgument { .. })
        ));
        shared.pop();
        assert!(may_insert(&new, &ctx(vec![], shared), None, at(NOW)).is_ok());
    }

    #[test]
    fn rotation_refusals_and_grace_end() {
        let old = row("old");
        let grace_end = at(NOW + 500);
        let rows = vec![old.clone()];
        assert_eq!(
            rotation_end(&old, &rows, grace_end, Some(1), at(NOW)),
            Ok(grace_end)
        );
        let mut soon = old.clone();
        soon.expires_at = Some(at(NOW + 100));
        assert_eq!(
            rotation_end(&soon, &rows, grace_end, None, at(NOW)),
            Ok(at(NOW + 100))
        );
        for change in [
            |r: &mut Row| r.revoked_at = Some(at(NOW)),
            |r: &mut Row| r.rotated_to = Some("x".into()),
            |r: &mut Row| r.expires_at = Some(at(NOW)),
        ] {
            let mut bad = old.clone();
            change(&mut bad);
            assert!(matches!(
                rotation_end(&bad, &rows, grace_end, None, at(NOW)),
                Err(Error::InvalidArgument { .. })
            ));
        }
    }

    #[test]
    fn rotation_in_grace_may_go_one_over_the_quota_never_two() {
        let old = row("old");
        let mut in_grace = row("earlier");
        in_grace.rotated_to = Some("old".into());
        in_grace.expires_at = Some(at(NOW + 60_000));
        let at_limit = vec![old.clone()];
        assert!(rotation_end(&old, &at_limit, at(NOW + 1), Some(1), at(NOW)).is_ok());
        let over = vec![old.clone(), in_grace];
        assert_eq!(
            rotation_end(&old, &over, at(NOW + 1), Some(1), at(NOW)),
            Err(Error::QuotaExceeded { limit: 1 })
        );
        // No grace: the old key stops at once, so a rotation never adds a key.
        assert!(rotation_end(&old, &over, at(NOW), Some(1), at(NOW)).is_ok());
        assert!(rotation_end(&old, &over[..1], at(NOW), Some(0), at(NOW)).is_ok());
    }

    #[test]
    fn successor_keeps_the_lifetime() {
        let mut old = row("old");
        assert_eq!(successor_expiry(&old, at(NOW)), None);
        old.expires_at = Some(at(NOW + 4000));
        assert_eq!(successor_expiry(&old, at(NOW)), Some(at(NOW + 5000)));
    }

    #[test]
    fn updates_refuse_revoked_keys_and_rotated_expiry() {
        let old = row("k");
        let upd = KeyUpdate::new().name("new").scopes(["a"]).enabled(false);
        let new = updated_row(&old, std::slice::from_ref(&old), &upd, Some(1), at(NOW)).unwrap();
        assert_eq!((new.name.as_str(), new.enabled), ("new", false));
        assert_eq!(new.scopes, ["a"]);
        assert_eq!((new.row_id, &new.hash), (old.row_id, &old.hash));
        let mut revoked = old.clone();
        revoked.revoked_at = Some(at(NOW));
        for upd in [KeyUpdate::new().name("n"), KeyUpdate::new().enabled(true)] {
            assert!(matches!(
                updated_row(&revoked, &[], &upd, None, at(NOW)),
                Err(Error::InvalidArgument { .. })
            ));
        }
        let mut rotated = old.clone();
        rotated.rotated_to = Some("next".into());
        let clear = KeyUpdate::new().expires_at(None);
        assert!(updated_row(&rotated, &[], &clear, None, at(NOW)).is_err());
        assert!(updated_row(&rotated, &[], &KeyUpdate::new().name("n"), None, at(NOW)).is_ok());
    }

    #[test]
    fn reviving_an_expired_key_is_held_to_the_quota() {
        let mut expired = row("old");
        expired.row_id = 1;
        expired.expires_at = Some(at(NOW));
        let mut other = row("other");
        other.row_id = 2;
        let revive = KeyUpdate::new().expires_at(None);
        let rows = [expired.clone(), other.clone()];
        assert_eq!(
            updated_row(&expired, &rows, &revive, Some(1), at(NOW)).unwrap_err(),
            Error::QuotaExceeded { limit: 1 }
        );
        assert!(updated_row(&expired, &rows, &revive, Some(2), at(NOW)).is_ok());
        assert!(updated_row(&expired, &rows, &revive, None, at(NOW)).is_ok());
        // a disabled other key still counts; a change that keeps it expired is free
        other.enabled = false;
        let rows = [expired.clone(), other];
        assert!(updated_row(&expired, &rows, &revive, Some(1), at(NOW)).is_err());
        let rename = KeyUpdate::new().name("n");
        assert!(updated_row(&expired, &rows, &rename, Some(1), at(NOW)).is_ok());
    }

    #[test]
    fn metadata_is_an_object_within_the_bound() {
        use serde_json::json;
        assert!(check_metadata(json!({})).unwrap().is_empty());
        assert!(check_metadata(json!([])).is_err());
        assert!(check_metadata(json!(null)).is_err());
        let fits = json!({ "b": "x".repeat(MAX_METADATA_BYTES - 8) });
        assert!(check_metadata(fits).is_ok());
        let over = json!({ "b": "x".repeat(MAX_METADATA_BYTES - 7) });
        assert!(check_metadata(over).is_err());
    }
}
