//! Listing keys page by page, one user's or everyone's, filtered by status.

use super::time::Timestamp;
use super::types::{KeyInfo, KeyStatus};
use super::ApiKeys;
use crate::user_id::check_user_id;
use crate::Error;

/// Most keys one page may hold.
pub const MAX_PAGE: usize = 1000;

/// Where a listing goes on: the position after the last key of a page. Opaque; written and
/// read back as text (e.g. by a web page) with [`ListCursor::as_string`] /
/// [`ListCursor::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListCursor(i64);

impl ListCursor {
    /// The cursor as text.
    pub fn as_string(&self) -> String {
        format!("r{}", self.0)
    }
    /// A cursor given back as text.
    ///
    /// ```
    /// use keyseal::ListCursor;
    /// assert!(ListCursor::parse("r42").is_ok());
    /// assert!(ListCursor::parse("42").is_err());
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for text no cursor gives.
    pub fn parse(text: &str) -> Result<Self, Error> {
        text.strip_prefix('r')
            .and_then(|n| n.parse().ok())
            .filter(|n: &i64| *n > 0)
            .map(ListCursor)
            .ok_or_else(|| Error::InvalidArgument {
                what: format!("list cursor {text:?}: not one a listing gave"),
            })
    }
}

/// Which keys [`ApiKeys::list_page`] gives: one user's or every user's, optionally only
/// those in one status, from a cursor on, at most `limit` (1 to 1000, default 100).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ListFilter {
    /// One user's keys, or every user's (`None`: an admin listing).
    pub user: Option<String>,
    /// Only keys in this status now.
    pub status: Option<KeyStatus>,
    /// Go on after this point (from [`KeyPage::next`]).
    pub after: Option<ListCursor>,
    /// At most this many keys.
    pub limit: usize,
}

impl ListFilter {
    /// One user's keys.
    pub fn user(user_id: impl Into<String>) -> Self {
        ListFilter {
            user: Some(user_id.into()),
            ..Self::all()
        }
    }
    /// Every user's keys.
    pub fn all() -> Self {
        ListFilter {
            user: None,
            status: None,
            after: None,
            limit: 100,
        }
    }
    /// Only keys in `status`.
    #[must_use]
    pub fn status(mut self, status: KeyStatus) -> Self {
        self.status = Some(status);
        self
    }
    /// From `cursor` on.
    #[must_use]
    pub fn after(mut self, cursor: Option<ListCursor>) -> Self {
        self.after = cursor;
        self
    }
    /// At most `limit` keys (1 to 1000).
    #[must_use]
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }
}

/// One page of a listing.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct KeyPage {
    /// The keys, newest first: metadata only, never keys or hashes.
    pub keys: Vec<KeyInfo>,
    /// Where the next page starts; `None` at the end (a cursor may also lead to an empty
    /// page).
    pub next: Option<ListCursor>,
}

impl ApiKeys {
    /// One page of keys, newest first (by creation order in the store), metadata only. Pages
    /// are stable while keys are created: following `next` gives every key that existed at
    /// the first page exactly once (keys created meanwhile appear on no later page; deleted
    /// ones drop out). The status filter is applied here (the store is read by row id), so
    /// a page holds `limit` matching keys unless the listing ended.
    ///
    /// ```
    /// use keyseal::{ApiKeys, ApiKeysConfig, KeyStatus, ListFilter, NewKey};
    /// # let dir = tempfile::tempdir().unwrap();
    /// let keys = ApiKeys::open_with(dir.path().join("keys.db"), ApiKeysConfig::default().bcrypt_cost(4))?;
    /// for user in ["ana", "bo", "cy"] {
    ///     keys.create(&NewKey::new(user, "CI"))?;
    /// }
    /// let mut seen = Vec::new();
    /// let mut filter = ListFilter::all().status(KeyStatus::Active).limit(2);
    /// loop {
    ///     let page = keys.list_page(&filter)?;
    ///     seen.extend(page.keys.into_iter().map(|k| k.user_id));
    ///     match page.next {
    ///         Some(next) => filter = filter.after(Some(next)),
    ///         None => break,
    ///     }
    /// }
    /// assert_eq!(seen, ["cy", "bo", "ana"]);
    /// # Ok::<(), keyseal::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a bad user id or a limit of 0 or above 1000;
    /// [`Error::Storage`].
    pub fn list_page(&self, filter: &ListFilter) -> Result<KeyPage, Error> {
        if let Some(user) = &filter.user {
            check_user_id(user)?;
        }
        if !(1..=MAX_PAGE).contains(&filter.limit) {
            return Err(Error::InvalidArgument {
                what: format!("list limit {}: 1 to {MAX_PAGE}", filter.limit),
            });
        }
        // Best effort: queued last uses, so the listing is current; never a reason to fail.
        let _ = self.flush_within(std::time::Duration::from_millis(50));
        let now = Timestamp::now();
        let mut before = filter.after.map(|c| c.0);
        let mut keys = Vec::new();
        loop {
            // With a status filter, read more than needed: most rows may not match.
            let want = if filter.status.is_some() {
                MAX_PAGE
            } else {
                filter.limit - keys.len()
            };
            let rows = self.backend.page(filter.user.as_deref(), before, want)?;
            let ended = rows.len() < want;
            for row in rows {
                before = Some(row.row_id);
                let info = KeyInfo::from_row(row, now);
                if filter.status.map_or(true, |s| s == info.status) {
                    keys.push(info);
                    if keys.len() == filter.limit {
                        return Ok(KeyPage {
                            keys,
                            next: before.map(ListCursor),
                        });
                    }
                }
            }
            if ended {
                return Ok(KeyPage { keys, next: None });
            }
        }
    }
}
