//! `{{name}}`: an auth plugin. Admits a client whose token is one of the
//! keys of `config.keys` (token -> user id); refuses the others.

use std::collections::BTreeMap;

use ferrygate_sdk::{Auth, ConnectRequest, Identity, Result, Verdict, log};
use serde::Deserialize;

struct Plugin;

/// The plugin's `config` table in the manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Token -> user id. Put real keys in the environment: `${VAR}`.
    keys: BTreeMap<String, String>,
}

impl Auth for Plugin {
    type Config = Config;

    fn authenticate(config: &Config, request: &ConnectRequest) -> Result<Verdict> {
        let Some(token) = request.token.as_deref() else {
            return Ok(Verdict::unauthorized("missing token"));
        };
        Ok(match config.keys.get(token) {
            Some(user) => Verdict::allow(Identity::for_user(user.as_str())),
            None => {
                // In the gateway's log, tagged with the plugin's name.
                log::info!("refused an unknown token from {}", request.remote_address);
                Verdict::unauthorized("unknown token")
            }
        })
    }
}

ferrygate_sdk::export_auth!(Plugin);
