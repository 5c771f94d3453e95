//! The process's log output: `tracing` events as text lines on stderr, with
//! every secret the manifest holds replaced by `[redacted]` on the way out.
//!
//! The gateway's own messages never print a secret (`Secret` hides itself,
//! broker URLs are shown redacted, plugin errors are scrubbed where they are
//! made); this is the net under the libraries it uses, whose debug lines
//! may print a `nats://user:password@` address. Owns only the writer: what is
//! logged, and at which level, is each module's business.

use std::io::{self, Write};
use std::sync::{Arc, OnceLock};

use arc_swap::ArcSwap;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use crate::config::{Config, Redactor};

/// The secrets scrubbed from every line; empty until [`hide_secrets_of`].
fn secrets() -> &'static ArcSwap<Redactor> {
    static SECRETS: OnceLock<ArcSwap<Redactor>> = OnceLock::new();
    SECRETS.get_or_init(|| ArcSwap::from_pointee(Redactor::default()))
}

/// Installs the stderr subscriber (`RUST_LOG`, `info` by default).
pub fn init() {
    init_at("info");
}

/// Installs the stderr subscriber with `default` as the filter when
/// `RUST_LOG` is unset (`check` shows warnings only, such as a cache
/// directory it cannot use).
pub fn init_at(default: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_writer(ScrubbedStderr)
        .with_ansi(io::IsTerminal::is_terminal(&io::stderr()))
        .init();
}

/// From now on, hides every secret of `config` in log lines: the API key,
/// the broker's password, token and URL credentials, and each plugin's
/// config secrets.
pub fn hide_secrets_of(config: &Config) {
    let mut all = config.broker.secrets();
    if let Some(key) = &config.server.api_key {
        all.add(key.expose());
    }
    for plugin in config.plugins.values() {
        all.extend(&plugin.secrets);
    }
    secrets().store(Arc::new(all));
}

/// Makes a [`Scrubbed`] stderr writer for each event.
#[derive(Debug, Clone, Copy)]
struct ScrubbedStderr;

impl<'a> MakeWriter<'a> for ScrubbedStderr {
    type Writer = Scrubbed;

    fn make_writer(&'a self) -> Self::Writer {
        Scrubbed
    }
}

/// Writes one formatted event (the subscriber hands it over in one piece)
/// to stderr with the secrets replaced.
#[derive(Debug)]
struct Scrubbed;

impl Write for Scrubbed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        let secrets = secrets().load();
        io::stderr().write_all(secrets.apply(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        io::stderr().flush()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    #[test]
    fn every_secret_of_the_manifest_is_scrubbed_from_log_lines() {
        let env: HashMap<String, String> =
            [("JWT".to_owned(), "jwt-signing-key".to_owned())].into();
        let config = Config::parse(
            "[server]\napi_key = \"api-key-1234\"\nallow_anonymous = true\n\
             [broker]\nkind = \"redis\"\nurls = [\"redis://:url-pass-5678@h:6379\"]\npassword = \"broker-pass-9012\"\n\
             [plugins.t]\nkind = \"transform\"\npath = \"t.wasm\"\nconfig = { signing = \"${JWT}\", issuer = \"example\" }\n",
            &env,
        )
        .expect("valid manifest");
        hide_secrets_of(&config);
        let line = "api-key-1234 url-pass-5678 broker-pass-9012 jwt-signing-key example";
        assert_eq!(
            secrets().load().apply(line),
            "[redacted] [redacted] [redacted] [redacted] example"
        );
    }
}
