//! Cursor pagination: every list answers `{data, next_cursor}` and takes `?cursor=&limit=`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::kernel::error::ValidationError;

/// Page size: default 20, 1 to 100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u16);

impl Limit {
    pub const DEFAULT: u16 = 20;
    pub const MAX: u16 = 100;

    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        let Some(raw) = raw else { return Ok(Self(Self::DEFAULT)) };
        let bad = || ValidationError::new("limit", "out_of_range", format!("must be a whole number from 1 to {}", Self::MAX));
        let n: u16 = raw.parse().map_err(|_| bad())?;
        if n == 0 || n > Self::MAX {
            return Err(bad());
        }
        Ok(Self(n))
    }
    /// The largest page.
    pub fn max() -> Self {
        Self(Self::MAX)
    }
    pub fn get(self) -> u16 {
        self.0
    }
}

impl Default for Limit {
    fn default() -> Self {
        Self(Self::DEFAULT)
    }
}

/// An opaque position in a list: base64url of the last key the previous page returned. What is
/// inside is the store's business; the domain only checks that it decodes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor(String);

impl Cursor {
    pub fn encode(position: &str) -> Self {
        Self(URL_SAFE_NO_PAD.encode(position.as_bytes()))
    }
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        if raw.is_empty() || raw.len() > 512 || URL_SAFE_NO_PAD.decode(raw).is_err() {
            return Err(ValidationError::new("cursor", "invalid_cursor", "must be a next_cursor value from a previous page"));
        }
        Ok(Self(raw.to_owned()))
    }
    /// The position inside, or `None` if the bytes are not text.
    pub fn position(&self) -> Option<String> {
        URL_SAFE_NO_PAD.decode(&self.0).ok().and_then(|b| String::from_utf8(b).ok())
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits() {
        assert_eq!(Limit::parse(None).unwrap().get(), 20);
        assert_eq!(Limit::parse(Some("100")).unwrap().get(), 100);
        for bad in ["0", "101", "-1", "x", "", "1.5", "99999999999"] {
            assert_eq!(Limit::parse(Some(bad)).unwrap_err().field, "limit");
        }
    }

    #[test]
    fn cursors_round_trip() {
        let c = Cursor::encode("PROFILE#abc");
        assert_eq!(Cursor::parse(c.as_str()).unwrap().position().unwrap(), "PROFILE#abc");
        assert!(Cursor::parse("!!").is_err());
        assert!(Cursor::parse("").is_err());
    }
}
