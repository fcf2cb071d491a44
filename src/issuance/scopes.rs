//! Permission checks inside verify: the scopes a caller requires of a key.

#[cfg(doc)]
use super::ApiKeys;

/// Which scopes a key must have for [`ApiKeys::verify_with`] to accept it; a valid key
/// without them is refused as `forbidden`. Build it once (say, per route) and reuse it: a
/// check allocates nothing and compares strings only.
///
/// ```
/// use keyseal::Requirement;
/// let deploy = Requirement::all(["deploy", "read"]); // both
/// let reader = Requirement::any(["read", "admin"]); // at least one
/// let scopes = ["read".to_string()];
/// assert!(!deploy.is_met_by(&scopes));
/// assert!(reader.is_met_by(&scopes));
/// assert!(Requirement::none().is_met_by(&[]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    any: bool,
    scopes: Box<[String]>,
}

impl Requirement {
    /// Requires nothing: [`ApiKeys::verify`]'s requirement.
    pub fn none() -> Self {
        Requirement {
            any: false,
            scopes: Box::new([]),
        }
    }

    /// Requires every one of `scopes` (none given: requires nothing).
    pub fn all<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Requirement {
            any: false,
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// Requires at least one of `scopes` (none given: requires nothing).
    pub fn any<I: IntoIterator<Item = S>, S: Into<String>>(scopes: I) -> Self {
        Requirement {
            any: true,
            scopes: scopes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether a key holding `held` meets this requirement.
    #[inline]
    pub fn is_met_by(&self, held: &[String]) -> bool {
        let has = |s: &String| held.iter().any(|h| h == s);
        if self.scopes.is_empty() {
            true
        } else if self.any {
            self.scopes.iter().any(has)
        } else {
            self.scopes.iter().all(has)
        }
    }
}

impl Default for Requirement {
    fn default() -> Self {
        Self::none()
    }
}
