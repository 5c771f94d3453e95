//! The copy of `ferrygate-sdk` that `plugin new --lang rust` writes into a
//! project (`ferrygate-sdk/`), so the project builds anywhere, with no
//! checkout of this repository and nothing but crates.io: the SDK is not
//! published (`publish = false`). The JavaScript and Python projects get their
//! helpers the same way.
//!
//! Owns the embedded SDK sources and the rewrite of its manifests, which
//! inherit from this repository's workspace, into stand-alone ones; a unit
//! test checks that the embedded files are every file of `sdk/`.

use std::path::PathBuf;

/// Where the SDK goes inside the project; the world crates find the WIT at
/// `../../../wit` from their folder, which is the project's own `wit/`.
pub const DIR: &str = "ferrygate-sdk";

/// The SDK's Rust sources, as (path under `sdk/`, text).
const SOURCES: &[(&str, &str)] = &[
    ("src/auth.rs", include_str!("../../../../sdk/src/auth.rs")),
    ("src/error.rs", include_str!("../../../../sdk/src/error.rs")),
    ("src/lib.rs", include_str!("../../../../sdk/src/lib.rs")),
    ("src/log.rs", include_str!("../../../../sdk/src/log.rs")),
    ("src/route.rs", include_str!("../../../../sdk/src/route.rs")),
    (
        "src/runtime.rs",
        include_str!("../../../../sdk/src/runtime.rs"),
    ),
    (
        "src/transform.rs",
        include_str!("../../../../sdk/src/transform.rs"),
    ),
    ("src/types.rs", include_str!("../../../../sdk/src/types.rs")),
    (
        "worlds/auth/src/lib.rs",
        include_str!("../../../../sdk/worlds/auth/src/lib.rs"),
    ),
    (
        "worlds/route/src/lib.rs",
        include_str!("../../../../sdk/worlds/route/src/lib.rs"),
    ),
    (
        "worlds/transform/src/lib.rs",
        include_str!("../../../../sdk/worlds/transform/src/lib.rs"),
    ),
];

/// The SDK's manifests, rewritten by [`standalone`].
const MANIFESTS: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../../../sdk/Cargo.toml")),
    (
        "worlds/auth/Cargo.toml",
        include_str!("../../../../sdk/worlds/auth/Cargo.toml"),
    ),
    (
        "worlds/route/Cargo.toml",
        include_str!("../../../../sdk/worlds/route/Cargo.toml"),
    ),
    (
        "worlds/transform/Cargo.toml",
        include_str!("../../../../sdk/worlds/transform/Cargo.toml"),
    ),
];

/// What the SDK's manifests inherit from this repository's workspace
/// (`Cargo.toml` at the root), written out.
const INHERITED: &[(&str, &str)] = &[
    ("edition.workspace = true", "edition = \"2024\""),
    ("rust-version.workspace = true", "rust-version = \"1.95\""),
    ("license.workspace = true", "license = \"Apache-2.0\""),
    (
        "repository.workspace = true",
        "repository = \"https://github.com/ferrygate/ferrygate\"",
    ),
    (
        "serde.workspace = true",
        "serde = { version = \"1\", features = [\"derive\"] }",
    ),
    // The workspace's lints are this repository's policy, not the author's.
    ("[lints]\nworkspace = true\n", ""),
];

/// A manifest of the SDK with what it inherits written out.
fn standalone(manifest: &str) -> String {
    INHERITED
        .iter()
        .fold(manifest.to_owned(), |text, (from, to)| {
            text.replace(from, to)
        })
}

/// The SDK's files, as (path inside the project, text).
pub fn files() -> Vec<(PathBuf, String)> {
    let base = PathBuf::from(DIR);
    let sources = SOURCES
        .iter()
        .map(|(path, text)| (base.join(path), (*text).to_owned()));
    let manifests = MANIFESTS
        .iter()
        .map(|(path, text)| (base.join(path), standalone(text)));
    sources.chain(manifests).collect()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    fn on_disk(dir: &Path, prefix: &str, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).expect("sdk/ is readable") {
            let path = entry.expect("an entry").path();
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let relative = format!("{prefix}{name}");
            if path.is_dir() {
                on_disk(&path, &format!("{relative}/"), out);
            } else {
                out.push(relative);
            }
        }
    }

    #[test]
    fn the_embedded_sdk_is_every_file_of_sdk() {
        let sdk = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sdk");
        let mut disk = Vec::new();
        on_disk(&sdk, "", &mut disk);
        disk.retain(|p| p.ends_with(".rs") || p.ends_with("Cargo.toml"));
        disk.sort();
        let mut embedded: Vec<String> = SOURCES
            .iter()
            .chain(MANIFESTS)
            .map(|(p, _)| (*p).to_owned())
            .collect();
        embedded.sort();
        assert_eq!(disk, embedded);
    }

    #[test]
    fn the_written_manifests_inherit_nothing() {
        for (path, text) in files() {
            if path.ends_with("Cargo.toml") {
                let manifest: toml::Table = text.parse().expect("a TOML manifest");
                assert!(!text.contains("workspace"), "{}:\n{text}", path.display());
                assert!(manifest["package"].get("edition").is_some(), "{text}");
            }
        }
        let root: toml::Table = include_str!("../../../../Cargo.toml")
            .parse()
            .expect("the workspace manifest");
        let package = &root["workspace"]["package"];
        for key in ["edition", "rust-version", "license", "repository"] {
            let value = package[key].as_str().expect("a string");
            assert!(
                INHERITED.iter().any(|(_, to)| to.contains(value)),
                "{key} = {value:?} is written out as the workspace says"
            );
        }
    }
}
