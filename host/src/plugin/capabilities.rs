//! What a plugin may import, decided from the component's import list before
//! it is compiled: each import is linked (the gateway's own interfaces and
//! the inert parts of WASI), granted (clocks, random when the manifest says
//! so), stubbed (any other WASI interface: linked to functions that refuse
//! every call, see [`super::stubs`]) or refused (anything the gateway cannot
//! provide, with the reason). A component with a refused import does not load,
//! and the error lists every refused import, not only the first.
//!
//! Owns the classification only; it never links or compiles anything.

use crate::config::Grant;

/// Interfaces every plugin gets for real. The `wasi:cli`, `wasi:io` and
/// `wasi:filesystem` entries are what a Rust `std` guest (and the Python and
/// JavaScript runtimes) import even when they never use them; with the
/// gateway's empty WASI context they are inert (no environment, no
/// arguments, no preopened directory, empty stdin, discarded stdout and
/// stderr).
const ALWAYS: &[&str] = &[
    "ferrygate:plugin/host",
    "ferrygate:plugin/types",
    "wasi:cli/environment",
    "wasi:cli/exit",
    "wasi:cli/stdin",
    "wasi:cli/stdout",
    "wasi:cli/stderr",
    "wasi:cli/terminal-input",
    "wasi:cli/terminal-output",
    "wasi:cli/terminal-stdin",
    "wasi:cli/terminal-stdout",
    "wasi:cli/terminal-stderr",
    "wasi:io/error",
    "wasi:io/poll",
    "wasi:io/streams",
    "wasi:filesystem/types",
    "wasi:filesystem/preopens",
];

/// The interfaces a grant makes real.
fn granted(grant: Grant) -> &'static [&'static str] {
    match grant {
        Grant::Clocks => &["wasi:clocks/wall-clock", "wasi:clocks/monotonic-clock"],
        Grant::Random => &[
            "wasi:random/random",
            "wasi:random/insecure",
            "wasi:random/insecure-seed",
        ],
    }
}

/// The grant that would make `interface` (unversioned) real, if any.
fn grant_for(interface: &str) -> Option<Grant> {
    [Grant::Clocks, Grant::Random]
        .into_iter()
        .find(|grant| granted(*grant).contains(&interface))
}

/// What the gateway does with one import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Linked to its real implementation: the `host` interface, or inert WASI.
    Linked,
    /// Linked to its real implementation because the manifest grants it.
    Granted(Grant),
    /// Linked to functions that refuse every call (the call fails, counted as
    /// cause `refused`). `grant` names the grant that would make it real.
    Stubbed {
        /// The grant that would allow it, if one exists.
        grant: Option<Grant>,
    },
    /// Cannot be linked: the component does not load.
    Refused(String),
}

/// One import of a component and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    /// The import's name as the component spells it, e.g. `wasi:io/streams@0.2.3`.
    pub name: String,
    /// What the gateway does with it.
    pub verdict: Verdict,
}

impl std::fmt::Display for Import {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let name = &self.name;
        match &self.verdict {
            Verdict::Linked => write!(f, "linked   {name}"),
            Verdict::Granted(grant) => {
                write!(f, "granted  {name} (grants = [\"{}\"])", grant_name(*grant))
            }
            Verdict::Stubbed { grant: Some(grant) } => write!(
                f,
                "stubbed  {name} ({}; grants = [\"{}\"] makes it real)",
                if name.starts_with("wasi:clocks/monotonic-clock") {
                    "inert: a frozen clock, always"
                } else if *grant == Grant::Clocks {
                    "inert while an instance starts: a frozen clock; every call after `init` refused"
                } else {
                    "inert while an instance starts: fixed bytes; every call after `init` refused"
                },
                grant_name(*grant)
            ),
            Verdict::Stubbed { grant: None } => {
                write!(
                    f,
                    "stubbed  {name} (every call refused; no grant allows it)"
                )
            }
            Verdict::Refused(reason) => write!(f, "refused  {name}: {reason}"),
        }
    }
}

/// The manifest spelling of a grant.
pub fn grant_name(grant: Grant) -> &'static str {
    match grant {
        Grant::Clocks => "clocks",
        Grant::Random => "random",
    }
}

/// The kind of an imported item, as far as the verdict cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ItemKind {
    /// An instance (an interface): the only kind a plugin may import.
    Instance,
    /// A bare function, type, value, module or component.
    Other(&'static str),
}

/// Why the top-level imports of a binary cannot be read.
#[derive(Debug, thiserror::Error)]
#[error("cannot read the component's imports: {0}")]
pub struct ReadError(#[from] wasmparser::BinaryReaderError);

/// The top-level imports of the component in `bytes`, in order, read from its
/// import sections without compiling it (milliseconds for a 20 MB component).
pub fn read_imports(bytes: &[u8]) -> Result<Vec<(String, ItemKind)>, ReadError> {
    use wasmparser::{ComponentTypeRef, Parser, Payload};
    let mut imports = Vec::new();
    // Nested modules and components have their own imports: only depth 1,
    // the outer component, counts.
    let mut depth = 0_usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload? {
            Payload::Version { .. } => depth += 1,
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentImportSection(section) if depth == 1 => {
                for import in section {
                    let import = import?;
                    let kind = match import.ty {
                        ComponentTypeRef::Instance(_) => ItemKind::Instance,
                        ComponentTypeRef::Func(_) => ItemKind::Other("function"),
                        ComponentTypeRef::Module(_) => ItemKind::Other("core module"),
                        ComponentTypeRef::Component(_) => ItemKind::Other("component"),
                        ComponentTypeRef::Type(_) => ItemKind::Other("type"),
                        ComponentTypeRef::Value(_) => ItemKind::Other("value"),
                    };
                    imports.push((import.name.name.to_owned(), kind));
                }
            }
            _ => {}
        }
    }
    Ok(imports)
}

/// The verdict on each of `imports` for a plugin holding `grants`.
pub fn classify(imports: &[(String, ItemKind)], grants: &[Grant]) -> Vec<Import> {
    imports
        .iter()
        .map(|(name, kind)| Import {
            name: name.clone(),
            verdict: verdict(name, *kind, grants),
        })
        .collect()
}

fn verdict(name: &str, kind: ItemKind, grants: &[Grant]) -> Verdict {
    if let ItemKind::Other(what) = kind {
        return Verdict::Refused(format!(
            "a bare {what} import; the gateway provides only interfaces"
        ));
    }
    // `wasi:io/streams@0.2.3` → `wasi:io/streams`
    let interface = name.split('@').next().unwrap_or(name);
    let version = name.split_once('@').map(|(_, version)| version);
    if interface.starts_with("ferrygate:plugin/")
        && let Some(version) = version
        && version != super::bindings::WIT_VERSION
    {
        return Verdict::Refused(format!(
            "built against WIT ferrygate:plugin@{version}, but this gateway loads ferrygate:plugin@{}: rebuild it against the gateway's `wit/` (docs/plugins.md, \"WIT versions\")",
            super::bindings::WIT_VERSION
        ));
    }
    if ALWAYS.contains(&interface) {
        return Verdict::Linked;
    }
    if let Some(grant) = grants
        .iter()
        .copied()
        .find(|grant| granted(*grant).contains(&interface))
    {
        return Verdict::Granted(grant);
    }
    if interface.starts_with("wasi:") {
        return Verdict::Stubbed {
            grant: grant_for(interface),
        };
    }
    if interface.starts_with("ferrygate:plugin/") {
        return Verdict::Refused(format!(
            "not an interface of this gateway's WIT package (ferrygate:plugin@{}: host, types); rebuild against the gateway's `wit/`",
            super::bindings::WIT_VERSION
        ));
    }
    Verdict::Refused(
        "an unknown interface, neither WASI nor ferrygate:plugin: no implementation exists in the gateway".to_owned(),
    )
}

/// The refused imports among `imports`, one per line, for an error message.
pub fn refusals(imports: &[Import]) -> Option<String> {
    let refused: Vec<String> = imports
        .iter()
        .filter(|import| matches!(import.verdict, Verdict::Refused(_)))
        .map(|import| format!("\n  {import}"))
        .collect();
    (!refused.is_empty()).then(|| refused.concat())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<(String, ItemKind)> {
        list.iter()
            .map(|n| ((*n).to_owned(), ItemKind::Instance))
            .collect()
    }

    #[test]
    fn every_import_gets_a_verdict() {
        let imports = names(&[
            "wasi:io/streams@0.2.3",
            "wasi:clocks/wall-clock@0.2.0",
            "wasi:random/random@0.2.0",
            "wasi:sockets/tcp@0.2.0",
            "wasi:http/types@0.2.0",
            "acme:db/query",
            "ferrygate:plugin/rpc@0.2.0",
            "ferrygate:plugin/host@0.1.0",
        ]);
        let verdicts: Vec<Verdict> = classify(&imports, &[Grant::Random])
            .into_iter()
            .map(|i| i.verdict)
            .collect();
        assert_eq!(verdicts[0], Verdict::Linked);
        assert_eq!(
            verdicts[1],
            Verdict::Stubbed {
                grant: Some(Grant::Clocks)
            }
        );
        assert_eq!(verdicts[2], Verdict::Granted(Grant::Random));
        assert_eq!(verdicts[3], Verdict::Stubbed { grant: None });
        assert_eq!(verdicts[4], Verdict::Stubbed { grant: None });
        assert!(matches!(verdicts[5], Verdict::Refused(_)));
        assert!(matches!(verdicts[6], Verdict::Refused(_)));
        assert!(
            matches!(&verdicts[7], Verdict::Refused(why) if why.contains("ferrygate:plugin@0.1.0")),
            "{:?}",
            verdicts[7]
        );
    }

    #[test]
    fn a_bare_function_import_is_refused() {
        let imports = vec![("log".to_owned(), ItemKind::Other("function"))];
        let verdicts = classify(&imports, &[]);
        assert!(matches!(&verdicts[0].verdict, Verdict::Refused(r) if r.contains("bare function")));
        assert!(refusals(&verdicts).is_some_and(|text| text.contains("refused  log")));
    }
}
