//! The two texts of a new project that say how to use it: its
//! `ferrygate.toml` (serves the plugin, with comments for a first reader) and
//! its README (the build commands). Owns their wording; the file list is
//! `scaffold`'s.

use super::{Lang, Request};
use crate::config::PluginKind;

/// A manifest that serves the plugin on 127.0.0.1:8080 with a config its
/// `init` accepts.
pub(super) fn manifest(request: &Request, wasm: &str) -> String {
    let name = &request.name;
    let mut text = format!(
        "# Serves the `{name}` plugin: `ferrygate check --config ferrygate.toml`,\n# then `ferrygate serve --config ferrygate.toml`.\n[server]\nlisten = \"127.0.0.1:8080\"\n# The HTTP API's key (`POST /v1/publish`, `GET /v1/plugins`): set\n# FERRYGATE_API_KEY; the fallback is for trying the plugin on your machine.\napi_key = \"${{FERRYGATE_API_KEY:-dev-only-key}}\"\n"
    );
    if request.kind != PluginKind::Auth {
        text.push_str(
            "# No auth plugin: every client connects, anonymously.\nallow_anonymous = true\n",
        );
    }
    text.push_str(&format!(
        "\n[plugins.{name}]\nkind = \"{}\"\npath = \"{wasm}\"\n",
        request.kind.as_str()
    ));
    if request.lang != Lang::Rust {
        text.push_str(
            "# An interpreter in the component needs more than the defaults (16 MiB, 50 ms).\nlimits = { memory_mib = 64, time_ms = 500 }\n",
        );
    }
    text.push_str(&format!(
        "# Uncomment to record each call for `ferrygate plugin test` (docs/plugins.md).\n# record = {{ path = \"{name}.jsonl\", max_mib = 16 }}\n"
    ));
    let (config, routes) = match request.kind {
        PluginKind::Auth => (
            "config = { keys = { demo-token = \"demo\" } }",
            String::new(),
        ),
        PluginKind::Route => (
            "config = { closed = [\"admin\"] }",
            format!(
                "\n# Every channel: each subscribe and publish is asked of {name}.\n[[routes]]\nchannels = \">\"\nroute = \"{name}\"\n"
            ),
        ),
        PluginKind::Transform => (
            "config = { drop_word = \"spam\" }",
            format!(
                "\n# Every channel: each publish goes through {name} before it fans out.\n[[routes]]\nchannels = \">\"\ninbound = [\"{name}\"]\n"
            ),
        ),
    };
    text.push_str(config);
    text.push('\n');
    text.push_str(&routes);
    text
}

pub(super) fn readme(request: &Request, build: &str) -> String {
    let name = &request.name;
    let copies = match (request.lang, &request.rust_sdk) {
        (Lang::Rust, Some(_)) => "",
        (Lang::Rust, None) => "`ferrygate-sdk/` and `wit/`",
        (Lang::Js, _) => "`ferrygate.js`, `ferrygate.d.ts` and `wit/`",
        (Lang::Python, _) => "`ferrygate_plugin/` and `wit/`",
    };
    let upgrade = if copies.is_empty() {
        String::new()
    } else {
        format!(
            "\n{copies} are copies from ferrygate {}: to move to a newer gateway, take them from a project its `plugin new` writes.\n",
            env!("CARGO_PKG_VERSION")
        )
    };
    format!(
        "# {name}\n\nA ferrygate {} plugin, written by `ferrygate plugin new`.\n\n```sh\n{build}\nferrygate check --config ferrygate.toml\nferrygate serve --config ferrygate.toml\n```\n{upgrade}\nThe guide: {}/blob/main/docs/plugins.md\n",
        request.kind.as_str(),
        env!("CARGO_PKG_REPOSITORY")
    )
}
