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

use std::path::Path;
use std::time::Duration;

use crate::cluster::free_port;
use crate::drain::TempDir;
use crate::support::plugins::repo_root;

mod runner;

use runner::{Background, Runner};

/// How long an expected output may take to appear.
pub(crate) const PATIENCE: Duration = Duration::from_secs(120);

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
