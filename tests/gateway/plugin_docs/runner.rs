//! Runs the lines of a walk-through as a reader would: each in `sh -c` in
//! the reader's folder, `cd`, background commands, expected output with
//! retries, tool installs, a free port (see the module docs of
//! `plugin_docs`). Owns processes it starts; parses nothing of the page.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::PATIENCE;
use crate::plugin_author::toolchain;

/// The processes a walk-through started in the background; killed when it
/// ends, however it ends.
pub(super) struct Background(pub(super) Vec<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

pub(super) struct Runner {
    pub(super) dir: PathBuf,
    pub(super) port: u16,
    pub(super) path: String,
    pub(super) lang: String,
    pub(super) background: Background,
    pub(super) ran: Vec<String>,
}

impl Runner {
    fn command(&self, line: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(line)
            .current_dir(&self.dir)
            .env("PATH", &self.path)
            .env_remove("FERRYGATE_API_KEY")
            // The project's own `target/`, as for a reader.
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            // The gateway's compile cache: shared by the tests' runs.
            .env(
                "XDG_CACHE_HOME",
                Path::new(env!("CARGO_TARGET_TMPDIR")).join("xdg-cache"),
            );
        command
    }

    fn local(&self, line: &str) -> String {
        let line = line.replace("127.0.0.1:8080", &format!("127.0.0.1:{}", self.port));
        if line.starts_with("ferrygate serve") || line.contains("exec ferrygate serve") {
            let (command, rest) = line.split_once(" >").unwrap_or((&line, ""));
            let redirect = if rest.is_empty() {
                String::new()
            } else {
                format!(" >{rest}")
            };
            return format!("{command} --listen 127.0.0.1:{}{redirect}", self.port);
        }
        line
    }

    pub(super) fn run(&mut self, line: &str, expected: &[String]) {
        self.ran.push(line.to_owned());
        if let Some(dir) = line.strip_prefix("cd ") {
            self.dir = self.dir.join(dir.trim());
            assert!(
                self.dir.is_dir(),
                "`{line}`: no folder {}",
                self.dir.display()
            );
            self.share_rust_target();
            return;
        }
        if line.contains("# once") {
            return self.install(line);
        }
        let line = self.local(line);
        if let Some(command) = line.strip_suffix('&') {
            assert!(expected.is_empty(), "`{line}` runs in the background");
            return self.spawn(command.trim());
        }
        let started = Instant::now();
        loop {
            let output = self.command(&line).output().expect("run sh");
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
            let missing: Vec<&String> = expected.iter().filter(|e| !text.contains(*e)).collect();
            if output.status.success() && missing.is_empty() {
                return;
            }
            if expected.is_empty() || started.elapsed() > PATIENCE {
                panic!(
                    "`{line}` in {} ({}), expected {missing:?}:\n{text}",
                    self.dir.display(),
                    output.status
                );
            }
            std::thread::sleep(Duration::from_secs(1));
        }
    }

    fn spawn(&mut self, command: &str) {
        let target = command
            .rsplit_once("> ")
            .map(|(_, file)| self.dir.join(file.split_whitespace().next().unwrap_or("")));
        let log = format!(".doc-test-background-{}.log", self.background.0.len());
        let log = std::fs::File::create(self.dir.join(log)).expect("log");
        let child = self
            .command(&format!("exec {command}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("start a background command");
        self.background.0.push(child);
        let started = Instant::now();
        let port = self.port;
        let ready = || {
            if command.contains("ferrygate serve") {
                std::net::TcpStream::connect(("127.0.0.1", port)).is_ok()
            } else {
                target
                    .as_ref()
                    .and_then(|t| std::fs::metadata(t).ok())
                    .is_some_and(|m| m.len() > 0)
            }
        };
        while !ready() {
            let child = self.background.0.last_mut().expect("just started");
            if let Ok(Some(status)) = child.try_wait() {
                panic!("`{command}` ended ({status}) in {}", self.dir.display());
            }
            assert!(
                started.elapsed() < PATIENCE,
                "`{command}` did not start (see {})",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// A tool install: it must name the pinned version; the copy
    /// `cargo xtask build-plugins` installed is linked as `tools/`.
    fn install(&self, line: &str) {
        use ferrygate::authoring::scaffold::{COMPONENTIZE_JS, COMPONENTIZE_PY};
        let (tool, pinned) = if line.contains("componentize-js") {
            (
                "js",
                format!("@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"),
            )
        } else if line.contains("componentize-py") {
            ("python", format!("componentize-py=={COMPONENTIZE_PY}"))
        } else {
            let output = self.command(line).output().expect("run sh");
            assert!(output.status.success(), "`{line}`: {output:?}");
            return;
        };
        assert!(line.contains(&pinned), "`{line}` installs {pinned}");
        assert!(line.contains("--prefix tools") || line.contains("--target tools"));
        std::os::unix::fs::symlink(toolchain(tool), self.dir.join("tools")).expect("link tools");
    }

    fn share_rust_target(&self) {
        if self.lang == "rust" && self.dir.join("Cargo.toml").exists() {
            let shared = Path::new(env!("CARGO_TARGET_TMPDIR")).join("plugin-new-target");
            std::fs::create_dir_all(&shared).expect("target folder");
            let _ = std::os::unix::fs::symlink(&shared, self.dir.join("target"));
        }
    }
}
