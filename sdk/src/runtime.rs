//! What the `export_*!` macros call: `lifecycle.init` (config parsing and the
//! panic hook), config lookup per call, and turning a plugin's `Err` into a
//! logged trap. Reached only through `ferrygate_sdk::__private`.

use std::sync::{Once, OnceLock};

use serde::de::DeserializeOwned;

use crate::{Error, log, parse_config};

/// `lifecycle.init`: installs the panic hook, then parses the config into
/// `slot` (once per instance; a second call keeps the first config).
pub fn init<C: DeserializeOwned + Send + Sync>(slot: &OnceLock<C>) -> Result<(), String> {
    install_panic_hook();
    if slot.get().is_some() {
        return Ok(());
    }
    let config = parse_config::<C>(&host_config()).map_err(|e| e.to_string())?;
    // A lost race cannot happen (an instance runs one call at a time), and
    // would leave an equal config in place anyway.
    let _ = slot.set(config);
    Ok(())
}

/// The parsed config. The host calls `init` on every fresh instance first;
/// should it not have, parse now, and trap with the reason if that fails.
pub fn config<C: DeserializeOwned + Send + Sync>(slot: &OnceLock<C>) -> &C {
    if slot.get().is_none()
        && let Err(reason) = init(slot)
    {
        fail("init", &Error::new(reason));
    }
    match slot.get() {
        Some(config) => config,
        None => fail("init", &Error::new("config was not stored")),
    }
}

/// Unwraps a plugin function's result, or logs its error and traps, so the
/// gateway applies the plugin's `on_error`.
pub fn or_fail<T>(function: &str, result: crate::Result<T>) -> T {
    match result {
        Ok(value) => value,
        Err(error) => fail(function, &error),
    }
}

fn fail(function: &str, error: &Error) -> ! {
    log::error(&format!("{function} failed: {error}"));
    // `abort` is a plain trap on wasm (no unwinding through the component
    // boundary) and skips the panic hook, which would log a second line.
    std::process::abort()
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            // `info` reads "panicked at src/lib.rs:12:5:\n<message>".
            log::error(&format!("plugin {info}"));
        }));
    });
}

#[cfg(target_arch = "wasm32")]
fn host_config() -> String {
    ferrygate_sdk_auth_world::ferrygate::plugin::host::config()
}

// Off wasm there is no host: an empty config, so `init` can still be tried.
#[cfg(not(target_arch = "wasm32"))]
fn host_config() -> String {
    "{}".to_owned()
}
