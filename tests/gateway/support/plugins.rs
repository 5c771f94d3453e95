//! Plugins for the tests: the real components built from `plugins/` by the
//! task runner (`cargo xtask build-plugins`), built once per test process.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ has a parent")
        .to_path_buf()
}

/// The path of the built component `name` (e.g. `jwt_auth`), building every
/// plugin first if this process has not done so yet. Cargo makes the build a
/// no-op when nothing changed, and its lock serialises concurrent test
/// processes.
pub fn plugin(name: &str) -> PathBuf {
    static BUILT: OnceLock<()> = OnceLock::new();
    BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let status = Command::new(cargo)
            .args(["xtask", "build-plugins"])
            .current_dir(repo_root())
            .status()
            .expect("run `cargo xtask build-plugins`");
        assert!(status.success(), "`cargo xtask build-plugins` failed");
    });
    let path = repo_root()
        .join("plugins/dist")
        .join(format!("{name}.wasm"));
    assert!(path.exists(), "{} was not built", path.display());
    path
}

/// A `[plugins.NAME]` table for the component `file`, with `extra` lines
/// (config, limits, on_error) added.
pub fn section(name: &str, kind: &str, file: &str, extra: &str) -> String {
    let path = plugin(file);
    format!(
        "\n[plugins.{name}]\nkind = \"{kind}\"\npath = {:?}\n{extra}\n",
        path.display().to_string()
    )
}
