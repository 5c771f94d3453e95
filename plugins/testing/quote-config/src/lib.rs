//! Test-only route plugin for secret redaction: it denies every subscribe,
//! publish and rpc with a reason that quotes its config's `password` (the
//! kind of debugging text a careless plugin sends to a client). The gateway
//! must hide the value before the client sees it.

use ferrygate_sdk::{Decision, Result, Route, RouteRequest};
use serde::Deserialize;

#[derive(Deserialize)]
struct Config {
    password: String,
}

struct QuoteConfig;

impl Route for QuoteConfig {
    type Config = Config;

    fn route(config: &Config, request: &RouteRequest) -> Result<Decision> {
        Ok(Decision::deny(format!(
            "no access to {} (tried password {})",
            request.channel, config.password
        )))
    }
}

ferrygate_sdk::export_route!(QuoteConfig);
