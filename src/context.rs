//! [`Context`]: what a `v3:` token is bound to (e.g. the table, row and column it lives in).
//!
//! A context is a list of byte strings ("parts"). It is authenticated with the token, never
//! stored in it: the caller supplies the same parts again to decrypt. Its encoding is
//! unambiguous, so that no two different lists authenticate alike:
//!
//! ```text
//! u32 BE number of parts || for each part: u32 BE length || bytes
//! ```
//!
//! So `("a:b", "c")` and `("a", "b:c")` differ, and no context (zero parts, `00 00 00 00`)
//! differs from one empty part (`00 00 00 01 00 00 00 00`).
//!
//! # Errors
//! Building a context never fails; a part longer than `u32::MAX` bytes, or more than
//! `u32::MAX` parts, is remembered and reported by the call that uses the context, as
//! [`Error::InvalidArgument`].
//!
//! # Security
//! Parts are identifiers, not secrets: they are kept in memory as given and shown by `Debug`
//! only as a count and a length.
//!
//! # Example
//! ```
//! use keyseal::Context;
//! let ctx = Context::new().part("users").part("42").part("api_token");
//! assert_eq!(ctx.len(), 3);
//! assert_ne!(
//!     Context::from_parts(&["a:b", "c"]),
//!     Context::from_parts(&["a", "b:c"])
//! );
//! assert_ne!(Context::none(), Context::from_parts(&[b""]));
//! ```

use core::fmt;

use crate::Error;

/// The parts a `v3:` token is bound to, kept in their encoded form (so that encrypting and
/// decrypting only copy it, never re-encode it).
#[derive(Clone, PartialEq, Eq, Default)]
pub struct Context {
    /// Number of parts.
    parts: u32,
    /// `u32 BE length || bytes` for each part, in order (the count is prefixed when used).
    body: Vec<u8>,
    /// A part or the number of parts did not fit in a u32: refused when the context is used.
    too_large: bool,
}

impl Context {
    /// An empty context (zero parts), to which [`Context::part`] adds parts.
    #[must_use]
    pub const fn new() -> Context {
        Context {
            parts: 0,
            body: Vec::new(),
            too_large: false,
        }
    }

    /// No context: zero parts. Tokens made with it decrypt only with no context, and a `v2:`
    /// token has none.
    #[must_use]
    pub const fn none() -> Context {
        Context::new()
    }

    /// This context with one more part appended (bytes, or text as its UTF-8 bytes).
    #[must_use]
    pub fn part(mut self, part: impl AsRef<[u8]>) -> Context {
        self.push(part.as_ref());
        self
    }

    /// Appends one part in place.
    pub fn push(&mut self, part: &[u8]) {
        let (Ok(len), Some(parts)) = (u32::try_from(part.len()), self.parts.checked_add(1)) else {
            self.too_large = true;
            return;
        };
        self.parts = parts;
        self.body.reserve(4 + part.len());
        self.body.extend_from_slice(&len.to_be_bytes());
        self.body.extend_from_slice(part);
    }

    /// Appends one part, refusing (rather than aborting) when memory runs out: for the npm
    /// bindings, where an allocation failure would trap.
    #[cfg_attr(
        not(all(target_arch = "wasm32", target_os = "unknown")),
        allow(dead_code)
    )]
    pub(crate) fn try_push(&mut self, part: &[u8]) -> Result<(), Error> {
        self.body
            .try_reserve(4 + part.len())
            .map_err(|_| Error::Malformed {
                what: "input too large for WebAssembly memory",
            })?;
        self.push(part);
        Ok(())
    }

    /// A context of these parts, in order.
    #[must_use]
    pub fn from_parts<P: AsRef<[u8]>>(parts: &[P]) -> Context {
        let mut ctx = Context::new();
        ctx.body
            .reserve(parts.iter().map(|p| 4 + p.as_ref().len()).sum::<usize>());
        for p in parts {
            ctx.push(p.as_ref());
        }
        ctx
    }

    /// Number of parts.
    #[must_use]
    pub fn len(&self) -> usize {
        self.parts as usize
    }

    /// Whether the context has no parts (as [`Context::none`]).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.parts == 0 && !self.too_large
    }

    /// The encoding (count, then each part length-prefixed), as authenticated after the header.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a part or the number of parts did not fit in a u32.
    pub fn encode(&self) -> Result<Vec<u8>, Error> {
        self.check()?;
        let mut out = Vec::with_capacity(4 + self.body.len());
        out.extend_from_slice(&self.parts.to_be_bytes());
        out.extend_from_slice(&self.body);
        Ok(out)
    }

    /// The count prefix and the length-prefixed parts, for the token code to join to a header.
    pub(crate) fn encoded_pieces(&self) -> Result<([u8; 4], &[u8]), Error> {
        self.check()?;
        Ok((self.parts.to_be_bytes(), &self.body))
    }

    fn check(&self) -> Result<(), Error> {
        if self.too_large {
            return Err(Error::InvalidArgument {
                what: "context: a part longer than 4 GiB, or more than 2^32 - 1 parts".into(),
            });
        }
        Ok(())
    }
}

impl fmt::Debug for Context {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("parts", &self.parts)
            .field("encoded_len", &(4 + self.body.len()))
            .finish_non_exhaustive()
    }
}

impl<P: AsRef<[u8]>> FromIterator<P> for Context {
    fn from_iter<I: IntoIterator<Item = P>>(iter: I) -> Context {
        let mut ctx = Context::new();
        for p in iter {
            ctx.push(p.as_ref());
        }
        ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_is_the_documented_layout() {
        assert_eq!(Context::none().encode().unwrap(), [0, 0, 0, 0]);
        assert_eq!(
            Context::from_parts(&[b""]).encode().unwrap(),
            [0, 0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(
            Context::new().part("ab").part([7u8]).encode().unwrap(),
            [0, 0, 0, 2, 0, 0, 0, 2, b'a', b'b', 0, 0, 0, 1, 7]
        );
    }

    #[test]
    fn split_points_differ() {
        let a = Context::from_parts(&["a:b", "c"]).encode().unwrap();
        let b = Context::from_parts(&["a", "b:c"]).encode().unwrap();
        assert_ne!(a, b);
        let c: Context = ["a", "b:c"].iter().collect();
        assert_eq!(c.encode().unwrap(), b);
    }

    #[test]
    fn debug_shows_no_part() {
        let text = format!("{:?}", Context::new().part("secret-row-name"));
        assert!(!text.contains("secret"), "{text}");
    }
}
