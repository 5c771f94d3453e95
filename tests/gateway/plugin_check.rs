//! `ferrygate check` compiles every plugin and names each problem: a
//! component of the wrong world, a plain core module, an ungranted import, a
//! typo in a plugin table.

use std::process::Command;

use crate::drain::TempDir;
use crate::support::plugins::{plugin, section};

/// Runs `ferrygate check` on `manifest`; returns exit code and stdout+stderr.
fn check(tag: &str, manifest: &str) -> (i32, String) {
    let dir = TempDir::new(tag);
    // The compile cache all test processes share (see support::TestGateway).
    let cache = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache");
    // Appended, so that line numbers in the test's text stay as written.
    let text = format!(
        "{manifest}\n[server]\nallow_anonymous = true\n\n[wasm]\ncache_dir = {:?}\n",
        cache.display().to_string()
    );
    let path = dir.write("ferrygate.toml", &text);
    let output = Command::new(env!("CARGO_BIN_EXE_ferrygate"))
        .args(["check", "--config", path.to_str().expect("utf-8 path")])
        .output()
        .expect("run ferrygate check");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    crate::support::canary::assert_clean(&text, "the output of `ferrygate check`");
    (output.status.code().unwrap_or(-1), text)
}

#[test]
fn check_accepts_the_shipped_plugins() {
    let manifest = format!(
        "{}{}[[routes]]\nchannels = \"chat.*\"\ninbound = [\"redact\"]\n",
        section(
            "redact",
            "transform",
            "json_redact",
            "config = { remove = [\"/card\"] }"
        ),
        section("stamp", "transform", "stamp_v1", ""),
    );
    let (code, output) = check("check-good-plugins", &manifest);
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("redact (transform"), "{output}");
}

#[test]
fn check_rejects_a_component_of_the_wrong_world() {
    // json-redact is a transform; declaring it as a route plugin must fail.
    let (code, output) = check("check-world", &section("acl", "route", "json_redact", ""));
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("plugin `acl`"), "{output}");
    assert!(
        output.contains("does not implement the `route` world"),
        "{output}"
    );
}

#[test]
fn check_rejects_a_plain_core_module() {
    let dir = TempDir::new("core-module");
    // The smallest valid core module: magic and version 1, no sections.
    let module = dir.0.join("core.wasm");
    std::fs::write(&module, b"\0asm\x01\0\0\0").expect("write module");
    let manifest = format!(
        "[plugins.core]\nkind = \"transform\"\npath = {:?}\n",
        module.display().to_string()
    );
    let (code, output) = check("check-core", &manifest);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("plugin `core`"), "{output}");
    assert!(
        output.contains("core WebAssembly module, not a component"),
        "{output}"
    );
}

/// A `path` naming a text file (the manifest itself, a source file) or an
/// empty one (a build caught mid-write) is said to be no WebAssembly in one
/// line, not with the parser's multi-line dump of the magic bytes.
#[test]
fn check_says_in_one_line_that_a_text_or_empty_file_is_not_webassembly() {
    let dir = TempDir::new("not-wasm");
    let text = dir.write("notes.wasm", "[server]\nlisten = \"127.0.0.1:8080\"\n");
    let empty = dir.write("empty.wasm", "");
    for (file, why) in [
        (text, "does not start with the `\\0asm` magic"),
        (empty, "the file is empty"),
    ] {
        let manifest = format!(
            "[plugins.p]\nkind = \"transform\"\npath = {:?}\n",
            file.display().to_string()
        );
        let (code, output) = check("check-not-wasm", &manifest);
        assert_eq!(code, 1, "{output}");
        let line = output
            .lines()
            .find(|l| l.contains("plugin `p`"))
            .unwrap_or_else(|| panic!("no line for the plugin: {output}"));
        assert!(
            line.contains("is not WebAssembly") && line.contains(why),
            "{output}"
        );
        assert_eq!(output.lines().count(), 1, "one line: {output}");
    }
}

#[test]
fn check_lists_ungranted_wasi_as_stubbed_and_granted_once_granted() {
    let (code, output) = check(
        "check-ungranted",
        &section("sneaky", "transform", "ungranted", ""),
    );
    assert_eq!(code, 0, "{output}");
    assert!(output.contains("plugin `sneaky` imports:"), "{output}");
    assert!(
        output.contains("stubbed  wasi:clocks/wall-clock")
            && output.contains("grants = [\"clocks\"] makes it real")
            && output.contains("stubbed  wasi:random/insecure-seed"),
        "{output}"
    );
    assert!(output.contains("linked   wasi:io/streams"), "{output}");
    let granted = section(
        "sneaky",
        "transform",
        "ungranted",
        "grants = [\"clocks\", \"random\"]",
    );
    let (code, output) = check("check-granted", &granted);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("granted  wasi:clocks/wall-clock"),
        "{output}"
    );
    assert!(!output.contains("stubbed"), "{output}");
}

#[test]
fn check_accepts_the_default_builds_of_javascript_and_python_plugins() {
    let manifest = format!(
        "{}{}",
        section(
            "profanity",
            "transform",
            "profanity_filter",
            "limits = { memory_mib = 64, time_ms = 500 }\nconfig = { words = [\"darn\"] }"
        ),
        section(
            "rooms",
            "route",
            "room_rules",
            "limits = { memory_mib = 64, time_ms = 500 }"
        ),
    );
    let (code, output) = check("check-langs", &manifest);
    assert_eq!(code, 0, "{output}");
    // Network interfaces no grant can allow: stubbed, said so.
    assert!(
        output.contains("stubbed  wasi:sockets/") && output.contains("no grant allows it"),
        "{output}"
    );
    assert!(output.contains("stubbed  wasi:http/"), "{output}");
}

#[test]
fn check_says_what_an_ungranted_clock_and_randomness_answer() {
    // The default builds need no grant: their runtimes' reads at start get
    // inert answers, and `check` says so on each import.
    let manifest = format!(
        "{}{}",
        section(
            "profanity",
            "transform",
            "profanity_filter",
            "limits = { memory_mib = 64, time_ms = 500 }\nconfig = { words = [\"darn\"] }",
        ),
        section(
            "rooms",
            "route",
            "room_rules",
            "limits = { memory_mib = 64, time_ms = 500 }"
        ),
    );
    let (code, output) = check("check-inert", &manifest);
    assert_eq!(code, 0, "{output}");
    assert!(
        output.contains("stubbed  wasi:clocks/monotonic-clock")
            && output.contains("inert: a frozen clock, always"),
        "{output}"
    );
    assert!(
        output.contains("stubbed  wasi:random/random")
            && output.contains(
                "inert while an instance starts: fixed bytes; every call after `init` refused"
            ),
        "{output}"
    );
}

/// A component whose only content is imports: two unknown interfaces, a
/// bare function, and a WASI interface that is stubbed.
fn component_with_foreign_imports() -> Vec<u8> {
    use wasm_encoder::{
        Component, ComponentImportSection, ComponentTypeRef, ComponentTypeSection, InstanceType,
    };
    let mut types = ComponentTypeSection::new();
    types.instance(&InstanceType::new());
    types
        .function()
        .params(std::iter::empty::<(&str, wasm_encoder::ComponentValType)>())
        .result(None);
    let mut imports = ComponentImportSection::new();
    imports.import("acme:db/query@1.0.0", ComponentTypeRef::Instance(0));
    imports.import("wasi:sockets/tcp@0.2.0", ComponentTypeRef::Instance(0));
    imports.import("acme:kv/store", ComponentTypeRef::Instance(0));
    imports.import("log", ComponentTypeRef::Func(1));
    let mut component = Component::new();
    component.section(&types).section(&imports);
    component.finish()
}

#[test]
fn check_lists_every_refused_import_with_its_reason() {
    let dir = TempDir::new("foreign-imports");
    let path = dir.0.join("foreign.wasm");
    std::fs::write(&path, component_with_foreign_imports()).expect("write component");
    let manifest = format!(
        "[plugins.foreign]\nkind = \"transform\"\npath = {:?}\n",
        path.display().to_string()
    );
    let (code, output) = check("check-foreign", &manifest);
    assert_eq!(code, 1, "{output}");
    assert!(output.contains("plugin `foreign`"), "{output}");
    for line in [
        "refused  acme:db/query@1.0.0: an unknown interface",
        "refused  acme:kv/store: an unknown interface",
        "refused  log: a bare function import",
    ] {
        assert!(output.contains(line), "{line} missing in: {output}");
    }
    // Stubbable WASI is not a reason to refuse, and no grant is hinted.
    assert!(!output.contains("wasi:sockets"), "{output}");
    assert!(!output.contains("see `grants`"), "{output}");
}

#[test]
fn check_names_the_key_of_a_typo_in_a_plugin_table() {
    let path = plugin("json_redact");
    let manifest = format!(
        "[plugins.redact]\nkind = \"transform\"\npath = {:?}\non_eror = \"allow\"\n",
        path.display().to_string()
    );
    let (code, output) = check("check-plugin-typo", &manifest);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("on_eror") && output.contains(":4:"),
        "{output}"
    );
}

#[test]
fn check_rejects_a_route_naming_a_plugin_of_the_wrong_kind() {
    let manifest = format!(
        "{}[[routes]]\nchannels = \"chat.*\"\nroute = \"redact\"\n",
        section("redact", "transform", "json_redact", "")
    );
    let (code, output) = check("check-route-kind", &manifest);
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("`route` names `redact`, a plugin of kind `transform`"),
        "{output}"
    );
}
