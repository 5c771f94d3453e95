//! Per-connection identities: each connection presents its own HS256 JWT in
//! the URL's `?token=` (SPEC §3), `sub` = `<prefix><index>`, so a gateway
//! with the `jwt-auth` plugin sees one distinct user per connection (presence
//! counts users, not sockets). Signs tokens; touches no socket.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::json;
use sha2::{Digest, Sha256};

/// Lifetime of each token, seconds: longer than any run (`--max-secs`).
const TOKEN_LIFETIME_S: u64 = 24 * 3600;

/// How to sign the tokens of one run.
#[derive(Debug, Clone)]
pub struct Tokens {
    secret: Vec<u8>,
    prefix: String,
    issuer: Option<String>,
    audience: Option<String>,
    /// `exp`, Unix seconds.
    expires: u64,
}

impl Tokens {
    /// Tokens signed with `secret`, users named `<prefix><index>`; `issuer`
    /// and `audience` become `iss` and `aud` when given.
    pub fn new(
        secret: &str,
        prefix: &str,
        issuer: Option<String>,
        audience: Option<String>,
    ) -> Self {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Self {
            secret: secret.as_bytes().to_vec(),
            prefix: prefix.to_owned(),
            issuer,
            audience,
            expires: now + TOKEN_LIFETIME_S,
        }
    }

    /// The user id of connection `index`.
    pub fn user(&self, index: usize) -> String {
        format!("{}{index}", self.prefix)
    }

    /// A signed HS256 JWT naming `user`.
    pub fn token(&self, user: &str) -> String {
        let mut claims = json!({"sub": user, "exp": self.expires});
        if let Some(iss) = &self.issuer {
            claims["iss"] = iss.as_str().into();
        }
        if let Some(aud) = &self.audience {
            claims["aud"] = aud.as_str().into();
        }
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let body = URL_SAFE_NO_PAD.encode(claims.to_string());
        let signed = format!("{header}.{body}");
        let signature = URL_SAFE_NO_PAD.encode(hmac_sha256(&self.secret, signed.as_bytes()));
        format!("{signed}.{signature}")
    }

    /// `base` with `token=<token of user>` added to its query.
    pub fn url(&self, base: &str, user: &str) -> String {
        let separator = if base.contains('?') { '&' } else { '?' };
        format!("{base}{separator}token={}", self.token(user))
    }
}

/// HMAC-SHA256 (RFC 2104) over `message`. Written out rather than taken
/// from the `hmac` crate, whose `digest/mac` feature would change the
/// features of `sha2` that wasmtime shares and rebuild the gateway's whole
/// compiler stack in a release build.
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    const BLOCK: usize = 64;
    let mut block = [0u8; BLOCK];
    if key.len() > BLOCK {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let pad = |byte: u8| block.map(|b| b ^ byte);
    let inner = Sha256::new()
        .chain_update(pad(0x36))
        .chain_update(message)
        .finalize();
    Sha256::new()
        .chain_update(pad(0x5c))
        .chain_update(inner)
        .finalize()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hmac_matches_rfc_4231() {
        // Test cases 2 (short key) and 6 (key longer than a block).
        let hex = |bytes: [u8; 32]| bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(
            hex(hmac_sha256(b"Jefe", b"what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        assert_eq!(
            hex(hmac_sha256(
                &[0xaa; 131],
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
    }

    #[test]
    fn signs_the_rfc_7515_style_layout() {
        let tokens = Tokens::new("k", "u", Some("iss".into()), None);
        let token = tokens.token("u7");
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(parts[1]).expect("b64")).expect("json");
        assert_eq!(claims["sub"], "u7");
        assert_eq!(claims["iss"], "iss");
        let expected = hmac_sha256(b"k", format!("{}.{}", parts[0], parts[1]).as_bytes());
        assert_eq!(parts[2], URL_SAFE_NO_PAD.encode(expected));
        assert_eq!(tokens.user(3), "u3");
        assert!(
            tokens
                .url("ws://h/ws", "u1")
                .starts_with("ws://h/ws?token=ey")
        );
        assert!(tokens.url("ws://h/ws?x=1", "u1").contains("?x=1&token="));
    }
}
