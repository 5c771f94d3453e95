//! Auth plugin `jwt-auth`: admits a connection whose token is a JSON Web
//! Token signed with HS256 (shared secret) or RS256 (RSA public key), with a
//! valid time window, issuer and audience. The user id comes from `sub` and
//! every claim is passed on as the identity's claims, so a route plugin such
//! as `channel-acl` can read them (for example the channel list named by
//! `channels_claim`).
//!
//! Expiry (`exp`) and not-before (`nbf`) are checked against the gateway's
//! time (`now-unix-ms`), since plugins have no clock; `exp` (plus `leeway_s`)
//! becomes the admission's expiry, so the gateway closes the connection
//! (4001) when the token runs out unless the client sends `refresh` with a
//! newer token of the same `sub`. Every refusal is a 401
//! with a short reason: `missing token`, `malformed token`, `unsupported
//! algorithm`, `bad signature`, `expired`, `not yet valid`, `wrong issuer`,
//! `wrong audience`, `missing sub`, `missing exp`, `invalid <claim> claim`.
//!
//! ```toml
//! config = { hs256_secret = "${JWT_SECRET}", issuer = "example", audience = "chat", leeway_s = 30 }
//! ```

use ferrygate_sdk::{Admission, Auth, ConnectRequest, Identity, Result, Verdict, log};

mod config;
mod token;

pub use config::Config;

struct JwtAuth;

impl Auth for JwtAuth {
    type Config = Config;

    fn authenticate(config: &Config, request: &ConnectRequest) -> Result<Verdict> {
        let token = match request.token.as_deref() {
            Some(token) if !token.is_empty() => token,
            _ => return Ok(Verdict::unauthorized("missing token")),
        };
        Ok(match token::verify(config, token, request.now_unix_ms) {
            Ok(verified) => Verdict::Allow(Admission {
                identity: Identity {
                    user: Some(verified.user),
                    claims: verified.claims,
                },
                expires_at_unix_ms: verified.expires_at_unix_ms,
            }),
            Err(rejection) => {
                let reason = rejection.to_string();
                log::debug!("refused {}: {reason}", request.remote_address);
                Verdict::unauthorized(reason)
            }
        })
    }
}

ferrygate_sdk::export_auth!(JwtAuth);

#[cfg(test)]
mod tests;
