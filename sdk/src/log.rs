//! Logging through the host: each line goes to the gateway's log, tagged with
//! the plugin's name and version. The host may drop lines beyond a rate it
//! chooses, so log decisions worth seeing, not every call.
//!
//! Use the functions with a ready string, or the macros with `format!`
//! arguments:
//!
//! ```no_run
//! use ferrygate_sdk::log;
//!
//! log::info("ready");
//! let user = "alice";
//! log::warn!("refused {user}");
//! ```
//!
//! On a non-wasm target (unit tests) lines go to stderr instead.

/// How important a log line is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Detail for debugging a plugin.
    Debug,
    /// Normal events.
    Info,
    /// Something unexpected that the plugin handled.
    Warn,
    /// A failure.
    Error,
}

/// Writes one line at `level`.
pub fn log(level: Level, message: &str) {
    write(level, message);
}

/// Writes one line at [`Level::Debug`].
pub fn debug(message: &str) {
    write(Level::Debug, message);
}

/// Writes one line at [`Level::Info`].
pub fn info(message: &str) {
    write(Level::Info, message);
}

/// Writes one line at [`Level::Warn`].
pub fn warn(message: &str) {
    write(Level::Warn, message);
}

/// Writes one line at [`Level::Error`].
pub fn error(message: &str) {
    write(Level::Error, message);
}

#[cfg(target_arch = "wasm32")]
fn write(level: Level, message: &str) {
    use ferrygate_sdk_auth_world::ferrygate::plugin::host;
    let level = match level {
        Level::Debug => host::LogLevel::Debug,
        Level::Info => host::LogLevel::Info,
        Level::Warn => host::LogLevel::Warn,
        Level::Error => host::LogLevel::Error,
    };
    host::log(level, message);
}

// The generated imports are `unreachable!()` off wasm; unit tests log here.
#[cfg(not(target_arch = "wasm32"))]
fn write(level: Level, message: &str) {
    eprintln!("[{level:?}] {message}");
}

/// Logs a `format!`-style line at [`Level::Debug`].
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Debug, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at [`Level::Info`].
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Info, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at [`Level::Warn`].
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Warn, &::std::format!($($arg)+)) };
}

/// Logs a `format!`-style line at [`Level::Error`].
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log($crate::log::Level::Error, &::std::format!($($arg)+)) };
}

// The macros live at the crate root (`#[macro_export]`); re-export them here
// so `log::info!` sits beside `log::info`.
pub use crate::{debug, error, info, warn};
