//! `{{name}}`: a route plugin. Lets anyone subscribe; lets only signed-in
//! users publish; refuses the channels listed in `config.closed`.

use ferrygate_sdk::{Action, Decision, Result, Route, RouteRequest};
use serde::Deserialize;

struct Plugin;

/// The plugin's `config` table in the manifest.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Channels nobody may use.
    #[serde(default)]
    closed: Vec<String>,
}

impl Route for Plugin {
    type Config = Config;

    fn route(config: &Config, request: &RouteRequest) -> Result<Decision> {
        if config.closed.iter().any(|c| *c == request.channel) {
            return Ok(Decision::deny("closed"));
        }
        Ok(match request.action {
            Action::Subscribe => Decision::Allow,
            Action::Publish if request.user().is_some() => Decision::Allow,
            Action::Publish => Decision::deny("sign in to publish"),
        })
    }
}

ferrygate_sdk::export_route!(Plugin);
