//! docs/plugins.md, followed as a newcomer would: every `sh` block marked
//! `<!-- doc-test: LANG -->` (LANG: `rust`, `js`, `python`; several may be
//! named) is run, in page order, line by line, in an empty folder outside the
//! repository, with this build's `ferrygate` first on PATH. A block marked
//! `<!-- doc-test: LANG write=FILE -->` is written into FILE, as the reader
//! is asked to; one marked `file=FILE` must be what FILE holds by then. So every command
//! of the page's walk-throughs (new project, build, check, serve, see it act,
//! `plugin test`, hot reload) is run by CI, and a page that drifts from the
//! product fails here.
//!
//! What the runner does besides `sh -c LINE`, each shown in the page:
//! - `cd DIR` changes its folder.
//! - A line ending in `&` runs in the background until the walk-through ends;
//!   the runner waits until `ferrygate serve` accepts connections, or until
//!   the file another one writes to is not empty (curl's response head).
//! - A comment `# → TEXT` under a command is its expected output: the command
//!   is run again, each second for up to [`PATIENCE`], until its output
//!   contains TEXT (a push or a reload takes a moment).
//! - A line marked `# once` installs a tool: the runner checks that it names
//!   the version the gateway is tested with, and links the copy `cargo xtask
//!   build-plugins` installed instead of downloading it again.
//! - `127.0.0.1:8080` becomes a free port (`--listen` for `serve`), and a
//!   Rust project's `target/` is one folder shared by the tests' builds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::cluster::free_port;
use crate::drain::TempDir;
use crate::plugin_author::toolchain;
use crate::support::plugins::repo_root;

/// How long an expected output may take to appear.
const PATIENCE: Duration = Duration::from_secs(120);

/// One thing the page asks of the reader.
enum Step {
    /// A command line (continuations joined) or a comment line.
    Line(String),
    /// A block marked `write=FILE`: the reader writes it into FILE.
    Write(String, String),
    /// A block marked `file=FILE`: what FILE holds by now.
    Shows(String, String),
}

/// The blocks of docs/plugins.md marked for `lang`, in page order.
fn walkthrough(lang: &str) -> Vec<Step> {
    let page = std::fs::read_to_string(repo_root().join("docs/plugins.md")).expect("the page");
    let mut steps = Vec::new();
    // A marker's words (languages, `write=F`, `file=F`), until its fence.
    let mut marked: Option<Vec<String>> = None;
    // The open block: its marker's words and its text so far.
    let mut inside: Option<(Vec<String>, String)> = None;
    for line in page.lines() {
        let trimmed = line.trim();
        if let Some((options, text)) = &mut inside {
            if !trimmed.starts_with("```") {
                text.push_str(line);
                text.push('\n');
                continue;
            }
            let option = |key: &str| {
                options
                    .iter()
                    .find_map(|o| o.strip_prefix(key).map(str::to_owned))
            };
            let text = std::mem::take(text);
            if let Some(file) = option("write=") {
                steps.push(Step::Write(file, text));
            } else if let Some(file) = option("file=") {
                steps.push(Step::Shows(file, text));
            } else {
                for line in text.lines().map(str::trim) {
                    match steps.last_mut() {
                        Some(Step::Line(last)) if is_continued(last) => {
                            last.truncate(last.trim_end().len() - 1);
                            last.push(' ');
                            last.push_str(line);
                        }
                        _ => steps.push(Step::Line(line.to_owned())),
                    }
                }
            }
            inside = None;
        } else if let Some(words) = trimmed
            .strip_prefix("<!-- doc-test:")
            .and_then(|rest| rest.strip_suffix("-->"))
        {
            let words: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
            marked = words.iter().any(|w| w == lang).then_some(words);
        } else if trimmed.starts_with("```") && marked.is_some() {
            inside = marked.take().map(|options| (options, String::new()));
        } else if !trimmed.is_empty() {
            marked = None;
        }
    }
    steps
}

fn is_continued(line: &str) -> bool {
    !line.starts_with('#') && line.trim_end().ends_with('\\')
}

/// The processes a walk-through started in the background; killed when it
/// ends, however it ends.
struct Background(Vec<Child>);

impl Drop for Background {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

struct Runner {
    dir: PathBuf,
    port: u16,
    path: String,
    lang: String,
    background: Background,
    ran: Vec<String>,
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

    fn run(&mut self, line: &str, expected: &[String]) {
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

/// Runs the page's walk-through for `lang`; returns the lines it ran.
fn follow(lang: &str) -> Vec<String> {
    let steps = walkthrough(lang);
    assert!(
        !steps.is_empty(),
        "docs/plugins.md has a walk-through for {lang}"
    );
    let home = TempDir::new(&format!("docs-{lang}"));
    let bin = Path::new(env!("CARGO_BIN_EXE_ferrygate"))
        .parent()
        .expect("the binary's folder")
        .display()
        .to_string();
    let mut runner = Runner {
        dir: home.0.clone(),
        port: free_port(),
        path: format!("{bin}:{}", std::env::var("PATH").unwrap_or_default()),
        lang: lang.to_owned(),
        background: Background(Vec::new()),
        ran: Vec::new(),
    };
    let mut index = 0;
    while index < steps.len() {
        let step = &steps[index];
        index += 1;
        let line = match step {
            Step::Write(file, text) => {
                std::fs::write(runner.dir.join(file), text).expect("write the page's file");
                continue;
            }
            Step::Shows(file, text) => {
                let path = runner.dir.join(file);
                let held = std::fs::read_to_string(&path).expect("the file the page shows");
                assert_eq!(
                    held.trim(),
                    text.trim(),
                    "{} is as the page shows",
                    path.display()
                );
                continue;
            }
            Step::Line(line) if line.is_empty() || line.starts_with('#') => continue,
            Step::Line(line) => line,
        };
        let mut expected = Vec::new();
        while let Some(Step::Line(text)) = steps.get(index) {
            let Some(text) = text.strip_prefix("# → ") else {
                break;
            };
            expected.push(text.trim().to_owned());
            index += 1;
        }
        runner.run(line, &expected);
    }
    std::mem::take(&mut runner.ran)
}

/// The walk-through has every step the page promises.
fn assert_complete(ran: &[String]) {
    for step in [
        "ferrygate plugin new",
        "ferrygate check",
        "ferrygate serve",
        "curl",
        "ferrygate plugin test",
        "swapped in",
    ] {
        assert!(
            ran.iter().any(|l| l.contains(step)),
            "the walk-through runs `{step}`: {ran:#?}"
        );
    }
}

#[test]
fn the_rust_walkthrough_of_plugins_md_works() {
    assert_complete(&follow("rust"));
}

#[test]
fn the_javascript_walkthrough_of_plugins_md_works() {
    assert_complete(&follow("js"));
}

#[test]
fn the_python_walkthrough_of_plugins_md_works() {
    assert_complete(&follow("python"));
}
