//! Values that must never appear in logs or printed configuration.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const MASK: &str = "********";

/// A secret string: masked in `Debug` and when serialized; read it with [`Secret::expose`].
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the one place that needs it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(MASK)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(MASK)
    }
}

/// A database URL whose password is masked in `Debug` and when serialized.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    /// Wraps a URL.
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The full URL, password included, for connecting.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL with its password replaced by a mask.
    pub fn masked(&self) -> String {
        let Some(scheme_end) = self.0.find("://").map(|i| i + 3) else {
            return self.0.clone();
        };
        let rest = &self.0[scheme_end..];
        let authority_end = rest.find('/').unwrap_or(rest.len());
        let Some(at) = rest[..authority_end].rfind('@') else {
            return self.0.clone();
        };
        match rest[..at].split_once(':') {
            Some((user, _password)) => {
                format!("{}{user}:{MASK}{}", &self.0[..scheme_end], &rest[at..])
            }
            None => self.0.clone(),
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl Serialize for DatabaseUrl {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.masked())
    }
}

impl<'de> Deserialize<'de> for DatabaseUrl {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(DatabaseUrl)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_password_only() {
        let url = DatabaseUrl::new("postgres://app:hunter2@db:5432/nearline");
        assert_eq!(url.masked(), "postgres://app:********@db:5432/nearline");
        assert_eq!(format!("{url:?}"), "postgres://app:********@db:5432/nearline");
        assert_eq!(DatabaseUrl::new("postgres://app@db/x").masked(), "postgres://app@db/x");
    }

    #[test]
    fn secret_never_prints() {
        let secret = Secret::new("s3cr3t-token-value");
        assert_eq!(format!("{secret:?}"), MASK);
        assert_eq!(secret.expose(), "s3cr3t-token-value");
    }
}
