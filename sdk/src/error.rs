//! The error a plugin function returns when the plugin itself fails (as
//! opposed to denying a request), and config parsing shared by every kind.

use std::fmt;

use serde::Deserialize;
use serde::de::DeserializeOwned;

/// A plugin failure, with a message for the gateway's log.
///
/// Any [`std::error::Error`] converts into it, so `?` works on serde_json,
/// base64 and similar errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    message: String,
}

/// The result of a plugin function.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
        }
    }

    /// The message.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

// Like anyhow, `Error` does not implement `std::error::Error` itself: that
// would make this blanket conversion overlap with `From<T> for T`.
impl<E: std::error::Error> From<E> for Error {
    fn from(error: E) -> Self {
        Self::new(error.to_string())
    }
}

/// Parses a plugin's config from the JSON text the host hands over, exactly
/// as `lifecycle.init` does: use it in unit tests to build a config.
///
/// The error says what is wrong, for example
/// ``invalid config: missing field `issuer` at line 1 column 2``.
///
/// ```
/// #[derive(serde::Deserialize)]
/// #[serde(deny_unknown_fields)]
/// struct Config { issuer: String }
///
/// let config: Config = ferrygate_sdk::parse_config(r#"{"issuer":"me"}"#).unwrap();
/// assert_eq!(config.issuer, "me");
/// let error = ferrygate_sdk::parse_config::<Config>(r#"{"isuer":"me"}"#).err().unwrap();
/// assert!(error.message().contains("unknown field `isuer`"), "{error}");
/// ```
pub fn parse_config<C: DeserializeOwned>(json: &str) -> Result<C> {
    serde_json::from_str(json).map_err(|e| Error::new(format!("invalid config: {e}")))
}

/// The `Config` of a plugin that takes none: accepts only an empty table, so
/// a stray key in the manifest is reported rather than ignored.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoConfig {}
