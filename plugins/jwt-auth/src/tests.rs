//! Tokens minted here (HS256 with `hmac`, RS256 with the key pair in
//! `testdata/`) and checked through `JwtAuth::authenticate`, natively.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ferrygate_sdk::serde_json::{Value, json};
use ferrygate_sdk::{Auth, ConnectRequest, Verdict, parse_config};
use hmac::{Hmac, Mac};
use rsa::RsaPrivateKey;
use rsa::pkcs1v15::SigningKey;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use sha2::Sha256;

use super::{Config, JwtAuth};

const NOW_S: u64 = 1_800_000_000;
const SECRET: &str = "a test secret of at least 32 bytes!";
const PRIVATE_PEM: &str = include_str!("../testdata/rs256_private.pem");
const PUBLIC_PEM: &str = include_str!("../testdata/rs256_public.pem");
const OTHER_PUBLIC_PEM: &str = include_str!("../testdata/other_public.pem");

fn config(extra: Value) -> Config {
    let mut table = json!({
        "hs256_secret": SECRET,
        "rs256_public_key_pem": PUBLIC_PEM,
        "issuer": "ferrygate-tests",
        "audience": "chat",
        "channels_claim": "channels",
    });
    if let (Some(table), Value::Object(extra)) = (table.as_object_mut(), extra) {
        table.extend(extra);
    }
    parse_config(&table.to_string()).expect("test config parses")
}

fn claims(extra: Value) -> Value {
    let mut claims = json!({
        "sub": "alice",
        "iss": "ferrygate-tests",
        "aud": "chat",
        "exp": NOW_S + 600,
        "channels": ["team.blue.>"],
    });
    if let (Some(claims), Value::Object(extra)) = (claims.as_object_mut(), extra) {
        claims.extend(extra);
    }
    claims
}

fn signing_input(alg: &str, claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({ "alg": alg, "typ": "JWT" }).to_string());
    format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()))
}

fn hs256(secret: &str, claims: &Value) -> String {
    let input = signing_input("HS256", claims);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{input}.{signature}")
}

fn rs256(claims: &Value) -> String {
    let input = signing_input("RS256", claims);
    let key = RsaPrivateKey::from_pkcs8_pem(PRIVATE_PEM).expect("test key parses");
    let signature = SigningKey::<Sha256>::new(key).sign(input.as_bytes());
    format!("{input}.{}", URL_SAFE_NO_PAD.encode(signature.to_bytes()))
}

fn authenticate(config: &Config, token: Option<&str>) -> Verdict {
    let request = ConnectRequest {
        path: "/ws".into(),
        query: String::new(),
        headers: Vec::new(),
        remote_address: "127.0.0.1:50000".into(),
        token: token.map(str::to_owned),
        now_unix_ms: NOW_S * 1000 + 250,
    };
    JwtAuth::authenticate(config, &request).expect("authenticate never fails")
}

fn denied(reason: &str) -> Verdict {
    Verdict::unauthorized(reason)
}

#[test]
fn good_tokens_are_admitted_with_sub_and_claims() {
    let config = config(json!({}));
    let claims = claims(json!({}));
    for token in [hs256(SECRET, &claims), rs256(&claims)] {
        let Verdict::Allow(admission) = authenticate(&config, Some(&token)) else {
            panic!("a good token is refused");
        };
        assert_eq!(
            admission.expires_at_unix_ms,
            Some((NOW_S + 600) * 1000),
            "exp becomes the expiry"
        );
        let identity = admission.identity;
        assert_eq!(identity.user.as_deref(), Some("alice"));
        let passed_on = identity.claims_json().expect("claims are an object");
        assert_eq!(Value::Object(passed_on), claims);
    }
}

#[test]
fn missing_or_malformed_tokens_are_refused() {
    let config = config(json!({}));
    assert_eq!(authenticate(&config, None), denied("missing token"));
    assert_eq!(authenticate(&config, Some("")), denied("missing token"));
    for token in ["abc", "a.b", "a.b.c.d", "!!.??.**"] {
        assert_eq!(
            authenticate(&config, Some(token)),
            denied("malformed token"),
            "{token}"
        );
    }
}

#[test]
fn expired_tokens_are_refused_unless_within_leeway() {
    let expired = claims(json!({ "exp": NOW_S - 10 }));
    let token = hs256(SECRET, &expired);
    assert_eq!(
        authenticate(&config(json!({})), Some(&token)),
        denied("expired")
    );
    let lenient = config(json!({ "leeway_s": 30 }));
    assert!(matches!(
        authenticate(&lenient, Some(&token)),
        Verdict::Allow(admission) if admission.expires_at_unix_ms.is_some_and(|ms| ms > NOW_S * 1000)
    ));
    let at_the_second = hs256(SECRET, &claims(json!({ "exp": NOW_S })));
    assert_eq!(
        authenticate(&config(json!({})), Some(&at_the_second)),
        denied("expired")
    );
}

#[test]
fn not_yet_valid_tokens_are_refused() {
    let early = hs256(SECRET, &claims(json!({ "nbf": NOW_S + 60 })));
    assert_eq!(
        authenticate(&config(json!({})), Some(&early)),
        denied("not yet valid")
    );
    let started = hs256(SECRET, &claims(json!({ "nbf": NOW_S })));
    assert!(matches!(
        authenticate(&config(json!({})), Some(&started)),
        Verdict::Allow(_)
    ));
}

#[test]
fn a_token_without_exp_is_refused_unless_allowed() {
    let mut forever = claims(json!({}));
    if let Some(map) = forever.as_object_mut() {
        map.remove("exp");
    }
    let token = hs256(SECRET, &forever);
    assert_eq!(
        authenticate(&config(json!({})), Some(&token)),
        denied("missing exp")
    );
    let allowing = config(json!({ "require_exp": false }));
    assert!(matches!(
        authenticate(&allowing, Some(&token)),
        Verdict::Allow(admission) if admission.expires_at_unix_ms.is_none()
    ));
}

#[test]
fn bad_signatures_are_refused() {
    let config = config(json!({}));
    let claims = claims(json!({}));
    let wrong_secret = hs256("another secret entirely", &claims);
    assert_eq!(
        authenticate(&config, Some(&wrong_secret)),
        denied("bad signature")
    );
    // Claims swapped after signing.
    let good = hs256(SECRET, &claims);
    let forged = hs256(SECRET, &json!({ "sub": "mallory" }));
    let mut parts: Vec<&str> = good.split('.').collect();
    parts[1] = forged.split('.').nth(1).unwrap_or_default();
    assert_eq!(
        authenticate(&config, Some(&parts.join("."))),
        denied("bad signature")
    );
    // RS256 signed by another key pair.
    let other = self::config(json!({ "rs256_public_key_pem": OTHER_PUBLIC_PEM }));
    assert_eq!(
        authenticate(&other, Some(&rs256(&claims))),
        denied("bad signature")
    );
}

#[test]
fn algorithms_without_a_configured_key_are_refused() {
    let claims = claims(json!({}));
    let rs_only: Config = parse_config(&json!({ "rs256_public_key_pem": PUBLIC_PEM }).to_string())
        .expect("config parses");
    // An HS256 token must not be checked with the RSA key (algorithm confusion).
    assert_eq!(
        authenticate(&rs_only, Some(&hs256(SECRET, &claims))),
        denied("unsupported algorithm")
    );
    let unsigned = format!("{}.", signing_input("none", &claims));
    assert_eq!(
        authenticate(&config(json!({})), Some(&unsigned)),
        denied("unsupported algorithm")
    );
}

#[test]
fn wrong_issuer_or_audience_is_refused() {
    let config = config(json!({}));
    let token = hs256(SECRET, &claims(json!({ "iss": "someone-else" })));
    assert_eq!(authenticate(&config, Some(&token)), denied("wrong issuer"));
    let token = hs256(SECRET, &claims(json!({ "aud": "billing" })));
    assert_eq!(
        authenticate(&config, Some(&token)),
        denied("wrong audience")
    );
    let token = hs256(SECRET, &claims(json!({ "aud": ["billing", "chat"] })));
    assert!(matches!(
        authenticate(&config, Some(&token)),
        Verdict::Allow(_)
    ));
}

#[test]
fn sub_and_channels_claims_are_checked() {
    let config = config(json!({}));
    let token = hs256(SECRET, &claims(json!({ "sub": "" })));
    assert_eq!(authenticate(&config, Some(&token)), denied("missing sub"));
    let token = hs256(SECRET, &claims(json!({ "channels": "team.>" })));
    assert_eq!(
        authenticate(&config, Some(&token)),
        denied("invalid channels claim")
    );
}

#[test]
fn bad_configs_name_the_problem() {
    let error = parse_config::<Config>(r#"{"issuer":"x"}"#).expect_err("no key");
    assert!(
        error
            .message()
            .contains("set hs256_secret or rs256_public_key_pem"),
        "{error}"
    );
    let error =
        parse_config::<Config>(r#"{"rs256_public_key_pem":"not a key"}"#).expect_err("bad pem");
    assert!(
        error
            .message()
            .contains("rs256_public_key_pem is not a PEM RSA public key"),
        "{error}"
    );
    let error = parse_config::<Config>(r#"{"hs256_secret":"s","isuser":"x"}"#).expect_err("typo");
    assert!(
        error.message().contains("unknown field `isuser`"),
        "{error}"
    );
}
