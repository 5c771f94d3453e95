//! `ferrygate plugin new --lang L --kind K NAME`: writes a project that builds
//! as generated, anywhere (no checkout of this repository needed), and that
//! `ferrygate check` accepts: the plugin's source, the language's helpers
//! (`ferrygate-sdk` for Rust, `sdk/js`, `sdk/python`) and the gateway's WIT,
//! a `ferrygate.toml` that serves it, and a README with the build command.
//!
//! Owns the templates (`host/templates/`); it never builds anything.

use std::path::{Path, PathBuf};

use crate::config::PluginKind;

mod texts;
mod vendor;

use texts::{manifest, readme};

/// The languages `plugin new` writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    /// Rust with `ferrygate-sdk`, built with cargo for `wasm32-wasip2`.
    Rust,
    /// JavaScript, built with componentize-js.
    Js,
    /// Python, built with componentize-py.
    Python,
}

/// componentize-js version the templates name (the one `cargo xtask
/// build-plugins` pins).
pub const COMPONENTIZE_JS: &str = "0.23.0";
/// componentize-py version the templates name.
pub const COMPONENTIZE_PY: &str = "0.25.1";

/// The gateway's WIT package, written into JavaScript and Python projects
/// (their tools read it); a unit test checks it lists every file of `wit/`.
pub const WIT: &[(&str, &str)] = &[
    ("auth.wit", include_str!("../../../wit/auth.wit")),
    ("route.wit", include_str!("../../../wit/route.wit")),
    ("transform.wit", include_str!("../../../wit/transform.wit")),
    ("types.wit", include_str!("../../../wit/types.wit")),
];

/// Why a project cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum ScaffoldError {
    /// The name is not usable as a crate, module and manifest name.
    #[error(
        "`{0}` is not a plugin name: use 1-64 lowercase letters, digits, `-` or `_`, starting with a letter"
    )]
    BadName(String),
    /// The folder exists: nothing is overwritten.
    #[error("{0} exists; choose another name or folder")]
    Exists(PathBuf),
    /// Writing failed.
    #[error("cannot write {path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// What `plugin new` is asked for.
#[derive(Debug, Clone)]
pub struct Request {
    /// The language.
    pub lang: Lang,
    /// The plugin kind.
    pub kind: PluginKind,
    /// The plugin (and folder, crate, manifest entry) name.
    pub name: String,
    /// Where the project folder goes (it is `parent/name`).
    pub parent: PathBuf,
    /// Rust only: the `ferrygate-sdk` dependency as a TOML value, such as
    /// `{ path = "../ferrygate/sdk" }`; by default a copy of the SDK written
    /// into the project (`ferrygate-sdk/`, with the WIT in `wit/`), so it
    /// builds with nothing but crates.io.
    pub rust_sdk: Option<String>,
}

/// The files of the project for `request`, as (path inside the folder, text).
pub fn files(request: &Request) -> Result<Vec<(PathBuf, String)>, ScaffoldError> {
    let name = &request.name;
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
    if !valid {
        return Err(ScaffoldError::BadName(name.clone()));
    }
    let module = name.replace('-', "_");
    let kind = request.kind;
    let fill = |template: &str| template.replace("{{name}}", name);
    let mut out: Vec<(PathBuf, String)> = Vec::new();
    let (wasm, build) = match request.lang {
        Lang::Rust => {
            let sdk = match &request.rust_sdk {
                Some(sdk) => sdk.clone(),
                None => {
                    out.extend(vendor::files());
                    push_wit(&mut out);
                    format!("{{ path = \"{}\" }}", vendor::DIR)
                }
            };
            out.push((
                "Cargo.toml".into(),
                fill(include_str!("../../templates/rust/Cargo.toml")).replace("{{sdk}}", &sdk),
            ));
            let source = match kind {
                PluginKind::Auth => include_str!("../../templates/rust/auth.rs"),
                PluginKind::Route => include_str!("../../templates/rust/route.rs"),
                PluginKind::Transform => include_str!("../../templates/rust/transform.rs"),
            };
            out.push(("src/lib.rs".into(), fill(source)));
            (
                format!("target/wasm32-wasip2/release/{module}.wasm"),
                "rustup target add wasm32-wasip2   # once\ncargo build --release --target wasm32-wasip2"
                    .to_owned(),
            )
        }
        Lang::Js => {
            let source = match kind {
                PluginKind::Auth => include_str!("../../templates/js/auth.js"),
                PluginKind::Route => include_str!("../../templates/js/route.js"),
                PluginKind::Transform => include_str!("../../templates/js/transform.js"),
            };
            out.push((format!("{module}.js").into(), fill(source)));
            out.push((
                "ferrygate.js".into(),
                include_str!("../../../sdk/js/ferrygate.js").to_owned(),
            ));
            out.push((
                "ferrygate.d.ts".into(),
                include_str!("../../../sdk/js/ferrygate.d.ts").to_owned(),
            ));
            push_wit(&mut out);
            (
                format!("{module}.wasm"),
                format!(
                    "npm install --prefix tools @bytecodealliance/componentize-js@{COMPONENTIZE_JS}   # once\ntools/node_modules/.bin/componentize-js --wit wit --world-name {} -o {module}.wasm {module}.js",
                    kind.as_str()
                ),
            )
        }
        Lang::Python => {
            let source = match kind {
                PluginKind::Auth => include_str!("../../templates/python/auth.py"),
                PluginKind::Route => include_str!("../../templates/python/route.py"),
                PluginKind::Transform => include_str!("../../templates/python/transform.py"),
            };
            out.push(("app.py".into(), fill(source)));
            out.push((
                "ferrygate_plugin/__init__.py".into(),
                include_str!("../../../sdk/python/ferrygate_plugin/__init__.py").to_owned(),
            ));
            push_wit(&mut out);
            (
                format!("{module}.wasm"),
                format!(
                    "python3 -m pip install --target tools componentize-py=={COMPONENTIZE_PY}   # once\nPYTHONPATH=tools python3 tools/bin/componentize-py -d wit -w {} componentize app -o {module}.wasm",
                    kind.as_str()
                ),
            )
        }
    };
    let ignore = match request.lang {
        Lang::Rust => "target/\n",
        Lang::Js => "tools/\n*.wasm\n",
        // `componentize-py bindings .` writes the last three.
        Lang::Python => {
            "tools/\n*.wasm\n__pycache__/\nwit_world/\ncomponentize_py_*\npoll_loop.py\n"
        }
    };
    out.push((".gitignore".into(), ignore.to_owned()));
    out.push(("ferrygate.toml".into(), manifest(request, &wasm)));
    out.push(("README.md".into(), readme(request, &build)));
    Ok(out)
}

fn push_wit(out: &mut Vec<(PathBuf, String)>) {
    for (file, text) in WIT {
        out.push((Path::new("wit").join(file), (*text).to_owned()));
    }
}

/// Writes the project into `parent/name`, which must not exist; returns its
/// folder.
pub fn write(request: &Request) -> Result<PathBuf, ScaffoldError> {
    let files = files(request)?;
    let dir = request.parent.join(&request.name);
    if dir.exists() {
        return Err(ScaffoldError::Exists(dir));
    }
    for (path, text) in files {
        let path = dir.join(path);
        let io = |source| ScaffoldError::Io {
            path: path.clone(),
            source,
        };
        if let Some(folder) = path.parent() {
            std::fs::create_dir_all(folder).map_err(io)?;
        }
        std::fs::write(&path, text).map_err(io)?;
    }
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_embedded_wit_is_every_file_of_wit() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../wit");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .expect("wit/ is readable")
            .filter_map(Result::ok)
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wit"))
            .collect();
        on_disk.sort();
        let embedded: Vec<&str> = WIT.iter().map(|(name, _)| *name).collect();
        assert_eq!(on_disk, embedded);
    }

    #[test]
    fn a_bad_name_is_refused() {
        let request = Request {
            lang: Lang::Js,
            kind: PluginKind::Route,
            name: "../evil".into(),
            parent: std::env::temp_dir(),
            rust_sdk: None,
        };
        assert!(matches!(files(&request), Err(ScaffoldError::BadName(_))));
    }
}
