//! The identity an auth plugin gives a connection, and the connection facts
//! route and transform plugins are told. Mirrors `ferrygate:plugin/types`.

use ferrygate_sdk_auth_world::ferrygate::plugin::types as wit;
use serde_json::{Map, Value};

use crate::Result;

/// Who is behind a connection, as the auth plugin decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The user id; `None` for an anonymous connection.
    pub user: Option<String>,
    /// Whatever else the auth plugin wanted later stages to know, as the text
    /// of one JSON object (for example a token's claims); `{}` when nothing.
    pub claims: String,
}

impl Identity {
    /// A user with no claims.
    pub fn for_user(id: impl Into<String>) -> Self {
        Self {
            user: Some(id.into()),
            claims: "{}".to_owned(),
        }
    }

    /// A user with these claims (a JSON object).
    pub fn with_claims(id: impl Into<String>, claims: &Map<String, Value>) -> Self {
        Self {
            user: Some(id.into()),
            claims: Value::Object(claims.clone()).to_string(),
        }
    }

    /// An anonymous connection.
    pub fn anonymous() -> Self {
        Self {
            user: None,
            claims: "{}".to_owned(),
        }
    }

    /// The claims parsed as a JSON object. Empty text counts as `{}`; text
    /// that is not a JSON object is an error.
    pub fn claims_json(&self) -> Result<Map<String, Value>> {
        if self.claims.trim().is_empty() {
            return Ok(Map::new());
        }
        match serde_json::from_str(&self.claims)? {
            Value::Object(map) => Ok(map),
            _ => Err(crate::Error::new("identity claims are not a JSON object")),
        }
    }
}

/// Facts about the connection a call is made for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// The connection id, as sent in `welcome`.
    pub id: String,
    /// The identity the auth plugin gave the connection.
    pub identity: Identity,
}

impl Connection {
    /// The connection's user id, if it has one.
    pub fn user(&self) -> Option<&str> {
        self.identity.user.as_deref()
    }
}

// === conversions from and to the generated types ===

impl From<wit::Identity> for Identity {
    fn from(identity: wit::Identity) -> Self {
        Self {
            user: identity.user,
            claims: identity.claims,
        }
    }
}

impl From<Identity> for wit::Identity {
    fn from(identity: Identity) -> Self {
        Self {
            user: identity.user,
            claims: identity.claims,
        }
    }
}

impl From<wit::Connection> for Connection {
    fn from(connection: wit::Connection) -> Self {
        Self {
            id: connection.id,
            identity: connection.identity.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_round_trip_through_json_text() {
        let mut claims = Map::new();
        claims.insert("role".into(), "admin".into());
        let identity = Identity::with_claims("alice", &claims);
        assert_eq!(identity.user.as_deref(), Some("alice"));
        assert_eq!(identity.claims_json(), Ok(claims));
    }

    #[test]
    fn empty_claims_are_an_empty_object_and_non_objects_are_errors() {
        let mut identity = Identity::anonymous();
        identity.claims = String::new();
        assert_eq!(identity.claims_json(), Ok(Map::new()));
        identity.claims = "[1]".into();
        assert!(identity.claims_json().is_err());
    }
}
