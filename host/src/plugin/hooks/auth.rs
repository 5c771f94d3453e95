//! `auth`: one call per connection attempt, before the upgrade, and one per
//! `refresh`.

use super::wrong_kind;
use crate::metrics::Cause;
use crate::plugin::bindings::auth::exports::ferrygate::plugin::authenticate::Verdict;
use crate::plugin::bindings::{Admission, Identity};
use crate::plugin::instance::{CallError, Exports, Plugin};
use crate::plugin::recording;

pub use crate::plugin::bindings::auth::exports::ferrygate::plugin::authenticate::ConnectRequest;

/// Longest user id an auth plugin may return.
const MAX_USER_BYTES: usize = 256;
/// Largest claims object an auth plugin may return; it is kept per connection.
const MAX_CLAIMS_BYTES: usize = 16 * 1024;

/// The checked verdict.
#[derive(Debug, Clone)]
pub enum AuthOutcome {
    /// Admit the connection as this identity, until the admission's expiry
    /// (always in the future of the request's `now_unix_ms`).
    Allow(Admission),
    /// Refuse with HTTP `status` (401 or 403) and a reason for the client.
    Deny {
        /// 401 or 403.
        status: u16,
        /// Sent to the client.
        reason: String,
    },
}

impl Plugin {
    /// Asks the auth plugin about one connection attempt.
    pub async fn authenticate(&self, request: &ConnectRequest) -> Result<AuthOutcome, CallError> {
        let result = self.authenticate_once(request).await;
        if let Some(recorder) = &self.recorder {
            let live = recording::auth_decision(&result);
            recorder.write(&self.name, &recording::connect_input(request, live));
        }
        result
    }

    async fn authenticate_once(&self, request: &ConnectRequest) -> Result<AuthOutcome, CallError> {
        let verdict = self
            .call(async |store, exports| match exports {
                Exports::Auth(auth) => {
                    auth.ferrygate_plugin_authenticate()
                        .call_authenticate(store, request)
                        .await
                }
                _ => Err(wrong_kind(self, "auth")),
            })
            .await?;
        match verdict {
            // An expiry already past admits nobody: fail closed.
            Verdict::Allow(admission)
                if admission
                    .expires_at_unix_ms
                    .is_some_and(|at| at <= request.now_unix_ms) =>
            {
                Ok(AuthOutcome::Deny {
                    status: 401,
                    reason: "token expired".to_owned(),
                })
            }
            Verdict::Allow(admission) => match check_identity(&admission.identity) {
                Ok(()) => Ok(AuthOutcome::Allow(admission)),
                Err(problem) => {
                    let error = self.error(Cause::bad_output, problem);
                    self.record(&error);
                    Err(error)
                }
            },
            Verdict::Deny(denial) => Ok(AuthOutcome::Deny {
                status: if denial.status == 401 { 401 } else { 403 },
                reason: self.redacted(denial.reason),
            }),
        }
    }
}

fn check_identity(identity: &Identity) -> Result<(), String> {
    if let Some(user) = &identity.user {
        if user.is_empty() || user.len() > MAX_USER_BYTES {
            return Err(format!("user id must be 1-{MAX_USER_BYTES} bytes"));
        }
        if user.chars().any(|c| c.is_control() || c.is_whitespace()) {
            return Err("user id contains whitespace or control characters".to_owned());
        }
    }
    if identity.claims.len() > MAX_CLAIMS_BYTES {
        return Err(format!("claims exceed {MAX_CLAIMS_BYTES} bytes"));
    }
    match serde_json::from_str::<serde_json::Value>(&identity.claims) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        Ok(_) => Err("claims must be a JSON object".to_owned()),
        Err(error) => Err(format!("claims are not JSON: {error}")),
    }
}
