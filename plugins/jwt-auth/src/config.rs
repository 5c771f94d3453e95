//! jwt-auth's `config` table: parsed and checked once per instance, keys
//! decoded up front so a call only verifies.

use rsa::RsaPublicKey;
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs1v15::VerifyingKey;
use rsa::pkcs8::DecodePublicKey;
use serde::Deserialize;
use sha2::Sha256;

/// The checked config.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct Config {
    /// The HS256 secret's bytes (the string's UTF-8 bytes).
    pub hs256_secret: Option<Vec<u8>>,
    /// The RS256 verifying key.
    pub rs256_key: Option<VerifyingKey<Sha256>>,
    /// `iss` must equal this, when set.
    pub issuer: Option<String>,
    /// `aud` (a string or a list) must contain this, when set.
    pub audience: Option<String>,
    /// Clock skew tolerated on `exp` and `nbf`, in milliseconds.
    pub leeway_ms: u64,
    /// Whether a token without `exp` is refused.
    pub require_exp: bool,
    /// The claim listing the channel patterns the user may use; checked to
    /// be a list of strings when present.
    pub channels_claim: Option<String>,
}

/// The `config` table as written in the manifest.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    hs256_secret: Option<String>,
    rs256_public_key_pem: Option<String>,
    issuer: Option<String>,
    audience: Option<String>,
    #[serde(default)]
    leeway_s: u64,
    #[serde(default = "yes")]
    require_exp: bool,
    channels_claim: Option<String>,
}

fn yes() -> bool {
    true
}

impl TryFrom<RawConfig> for Config {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        if raw.hs256_secret.is_none() && raw.rs256_public_key_pem.is_none() {
            return Err("set hs256_secret or rs256_public_key_pem (or both)".to_owned());
        }
        if raw.hs256_secret.as_deref() == Some("") {
            return Err("hs256_secret is empty (is its environment variable set?)".to_owned());
        }
        let rs256_key = match raw.rs256_public_key_pem.as_deref() {
            Some(pem) => Some(VerifyingKey::new(parse_public_key(pem)?)),
            None => None,
        };
        Ok(Self {
            hs256_secret: raw.hs256_secret.map(String::into_bytes),
            rs256_key,
            issuer: raw.issuer,
            audience: raw.audience,
            leeway_ms: raw.leeway_s.saturating_mul(1000),
            require_exp: raw.require_exp,
            channels_claim: raw.channels_claim,
        })
    }
}

/// Reads `BEGIN PUBLIC KEY` (SPKI) or `BEGIN RSA PUBLIC KEY` (PKCS#1) PEM.
fn parse_public_key(pem: &str) -> Result<RsaPublicKey, String> {
    let pem = pem.trim();
    let parsed = if pem.starts_with("-----BEGIN RSA PUBLIC KEY-----") {
        RsaPublicKey::from_pkcs1_pem(pem).map_err(|e| e.to_string())
    } else {
        RsaPublicKey::from_public_key_pem(pem).map_err(|e| e.to_string())
    };
    parsed.map_err(|e| format!("rs256_public_key_pem is not a PEM RSA public key: {e}"))
}
