//! Manifest errors that point at the file, line and key at fault.

use std::fmt;
use std::path::{Path, PathBuf};

/// A line and column in the manifest, both counted from 1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Location {
    /// Line number, from 1.
    pub line: usize,
    /// Column number (in characters), from 1.
    pub column: usize,
}

impl Location {
    /// The location of byte `offset` in `text`.
    pub fn of_offset(text: &str, offset: usize) -> Self {
        let before = &text[..offset.min(text.len())];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Self {
            line,
            column: before[line_start..].chars().count() + 1,
        }
    }

    /// Where the value of `path` (e.g. `["server", "listen"]`) is written.
    pub fn of_key(text: &str, path: &[&str]) -> Option<Self> {
        let root = toml::de::DeTable::parse(text).ok()?;
        let (first, rest) = path.split_first()?;
        let mut value = root.get_ref().get(*first)?;
        for key in rest {
            value = value.get_ref().as_table()?.get(*key)?;
        }
        Some(Self::of_offset(text, value.span().start))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

/// Why a manifest was rejected.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read at all.
    #[error("{}: cannot read the manifest: {source}", path.display())]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O failure.
        #[source]
        source: std::io::Error,
    },
    /// Not TOML, an unknown key, or a value of the wrong type.
    #[error("{}{}: {message}", FileName(path), LineSuffix(location))]
    Syntax {
        /// The manifest path, once known.
        path: Option<PathBuf>,
        /// Where in the file.
        location: Option<Location>,
        /// What the parser said, naming the key.
        message: String,
    },
    /// Well-formed, but a value is out of range or inconsistent.
    #[error("{}{}: `{key}` {reason}", FileName(path), LineSuffix(location))]
    Invalid {
        /// The manifest path, once known.
        path: Option<PathBuf>,
        /// Where in the file.
        location: Option<Location>,
        /// Dotted key at fault, e.g. `server.idle_timeout_ms`.
        key: String,
        /// What is wrong with it.
        reason: String,
    },
}

impl ConfigError {
    pub(super) fn from_toml(text: &str, error: &toml::de::Error) -> Self {
        Self::Syntax {
            path: None,
            location: error
                .span()
                .map(|span| Location::of_offset(text, span.start)),
            // serde speaks of fields; a manifest has keys.
            message: error
                .message()
                .trim()
                .replace("unknown field", "unknown key"),
        }
    }

    /// Attaches the manifest path to an error found while parsing its text.
    pub(super) fn in_file(mut self, file: &Path) -> Self {
        match &mut self {
            Self::Syntax { path, .. } | Self::Invalid { path, .. } => *path = Some(file.to_owned()),
            Self::Read { .. } => {}
        }
        self
    }
}

struct FileName<'a>(&'a Option<PathBuf>);

impl fmt::Display for FileName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(path) => write!(f, "{}", path.display()),
            None => f.write_str("manifest"),
        }
    }
}

struct LineSuffix<'a>(&'a Option<Location>);

impl fmt::Display for LineSuffix<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(location) => write!(f, ":{location}"),
            None => Ok(()),
        }
    }
}
