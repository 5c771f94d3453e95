//! The plugin author's tools behind `ferrygate plugin ...`: a new project
//! skeleton in Rust, JavaScript or Python (`scaffold`), and running a plugin
//! offline over recorded inputs (`replay`).
//!
//! Owns the author-facing commands' logic; it never serves traffic and reuses
//! the gateway's own plugin loading and calls, so what a plugin does here is
//! what it does live.

pub mod replay;
pub mod scaffold;
