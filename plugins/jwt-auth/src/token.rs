//! Verifies one compact JWS token (`header.claims.signature`, base64url)
//! and its registered claims; the reasons for refusal are what clients see.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrygate_sdk::serde_json::{self, Map, Value};
use hmac::{Hmac, Mac};
use rsa::pkcs1v15::Signature;
use rsa::signature::Verifier;
use sha2::Sha256;

use crate::Config;

/// A token that passed every check.
#[derive(Debug)]
pub struct Verified {
    /// The `sub` claim.
    pub user: String,
    /// The claims, as the JSON object text the token carried.
    pub claims: String,
    /// `exp` plus the configured leeway, in milliseconds since the Unix
    /// epoch: when the token stops being accepted; `None` without `exp`.
    pub expires_at_unix_ms: Option<u64>,
}

/// Why a token is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rejection {
    Malformed,
    UnsupportedAlgorithm,
    BadSignature,
    Expired,
    NotYetValid,
    MissingExp,
    WrongIssuer,
    WrongAudience,
    MissingSub,
    InvalidClaim(String),
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Malformed => f.write_str("malformed token"),
            Self::UnsupportedAlgorithm => f.write_str("unsupported algorithm"),
            Self::BadSignature => f.write_str("bad signature"),
            Self::Expired => f.write_str("expired"),
            Self::NotYetValid => f.write_str("not yet valid"),
            Self::MissingExp => f.write_str("missing exp"),
            Self::WrongIssuer => f.write_str("wrong issuer"),
            Self::WrongAudience => f.write_str("wrong audience"),
            Self::MissingSub => f.write_str("missing sub"),
            Self::InvalidClaim(claim) => write!(f, "invalid {claim} claim"),
        }
    }
}

/// Checks the signature first (nothing in an unsigned token is trusted),
/// then the claims against `now_unix_ms`, the gateway's time.
pub fn verify(config: &Config, token: &str, now_unix_ms: u64) -> Result<Verified, Rejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(claims), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rejection::Malformed);
    };
    let signed = &token[..header.len() + 1 + claims.len()];
    let header: Map<String, Value> = decode_json(header)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| Rejection::Malformed)?;
    match header.get("alg").and_then(Value::as_str) {
        Some("HS256") => verify_hs256(config, signed, &signature)?,
        Some("RS256") => verify_rs256(config, signed, &signature)?,
        _ => return Err(Rejection::UnsupportedAlgorithm),
    }
    let claims_text = decode(claims)?;
    let claims: Map<String, Value> =
        serde_json::from_slice(&claims_text).map_err(|_| Rejection::Malformed)?;
    let expires_at_unix_ms = check_time(config, &claims, now_unix_ms)?;
    check_issuer_and_audience(config, &claims)?;
    if let Some(name) = &config.channels_claim
        && let Some(channels) = claims.get(name)
    {
        let is_list_of_strings = channels
            .as_array()
            .is_some_and(|items| items.iter().all(Value::is_string));
        if !is_list_of_strings {
            return Err(Rejection::InvalidClaim(name.clone()));
        }
    }
    let user = match claims.get("sub").and_then(Value::as_str) {
        Some(sub) if !sub.is_empty() => sub.to_owned(),
        _ => return Err(Rejection::MissingSub),
    };
    let claims = String::from_utf8(claims_text).map_err(|_| Rejection::Malformed)?;
    Ok(Verified {
        user,
        claims,
        expires_at_unix_ms,
    })
}

fn decode(segment: &str) -> Result<Vec<u8>, Rejection> {
    URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| Rejection::Malformed)
}

fn decode_json(segment: &str) -> Result<Map<String, Value>, Rejection> {
    serde_json::from_slice(&decode(segment)?).map_err(|_| Rejection::Malformed)
}

fn verify_hs256(config: &Config, signed: &str, signature: &[u8]) -> Result<(), Rejection> {
    let secret = config
        .hs256_secret
        .as_deref()
        .ok_or(Rejection::UnsupportedAlgorithm)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).map_err(|_| Rejection::BadSignature)?;
    mac.update(signed.as_bytes());
    // Constant-time comparison.
    mac.verify_slice(signature)
        .map_err(|_| Rejection::BadSignature)
}

fn verify_rs256(config: &Config, signed: &str, signature: &[u8]) -> Result<(), Rejection> {
    let key = config
        .rs256_key
        .as_ref()
        .ok_or(Rejection::UnsupportedAlgorithm)?;
    let signature = Signature::try_from(signature).map_err(|_| Rejection::BadSignature)?;
    key.verify(signed.as_bytes(), &signature)
        .map_err(|_| Rejection::BadSignature)
}

/// Checks `exp` and `nbf`; returns the deadline `exp` sets (with leeway), in
/// milliseconds since the Unix epoch.
fn check_time(
    config: &Config,
    claims: &Map<String, Value>,
    now_ms: u64,
) -> Result<Option<u64>, Rejection> {
    let deadline_ms = match seconds_claim(claims, "exp")? {
        Some(exp_s) => {
            let deadline_ms = exp_s.saturating_mul(1000).saturating_add(config.leeway_ms);
            if now_ms >= deadline_ms {
                return Err(Rejection::Expired);
            }
            Some(deadline_ms)
        }
        None if config.require_exp => return Err(Rejection::MissingExp),
        None => None,
    };
    if let Some(nbf_s) = seconds_claim(claims, "nbf")?
        && now_ms.saturating_add(config.leeway_ms) < nbf_s.saturating_mul(1000)
    {
        return Err(Rejection::NotYetValid);
    }
    Ok(deadline_ms)
}

/// A NumericDate claim in whole seconds (fractions are cut off).
fn seconds_claim(claims: &Map<String, Value>, name: &str) -> Result<Option<u64>, Rejection> {
    match claims.get(name) {
        None => Ok(None),
        Some(value) => match (value.as_u64(), value.as_f64()) {
            (Some(seconds), _) => Ok(Some(seconds)),
            (None, Some(seconds)) if seconds >= 0.0 => Ok(Some(seconds as u64)),
            _ => Err(Rejection::InvalidClaim(name.to_owned())),
        },
    }
}

fn check_issuer_and_audience(
    config: &Config,
    claims: &Map<String, Value>,
) -> Result<(), Rejection> {
    if let Some(issuer) = &config.issuer
        && claims.get("iss").and_then(Value::as_str) != Some(issuer.as_str())
    {
        return Err(Rejection::WrongIssuer);
    }
    if let Some(audience) = &config.audience {
        let matches = match claims.get("aud") {
            Some(Value::String(aud)) => aud == audience,
            Some(Value::Array(auds)) => auds.iter().any(|aud| aud.as_str() == Some(audience)),
            _ => false,
        };
        if !matches {
            return Err(Rejection::WrongAudience);
        }
    }
    Ok(())
}
