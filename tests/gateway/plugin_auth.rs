//! The `jwt-auth` plugin guards `/ws`: bad tokens are refused with 401 before
//! the upgrade; a good one reaches `welcome` with the token's user id, however
//! the token travels (header, query, subprotocol).

use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::plugins::{repo_root, section};
use crate::support::{Client, TestGateway};

/// The HS256 signing key; a secret, so it holds `support::canary::CANARY`.
pub const SECRET: &str = "hs256-test-secret-c4nary-9f2e-0123456789";

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn fixture(name: &str) -> String {
    std::fs::read_to_string(repo_root().join("tests/fixtures").join(name)).expect("fixture")
}

/// The `[plugins.auth]` section most tests share: `jwt-auth` with
/// [`SECRET`], issuer `ferrygate-tests`, audience `chat` (what [`claims`]
/// carries).
pub fn jwt_auth_section() -> String {
    section(
        "auth",
        "auth",
        "jwt_auth",
        &format!(
            "config = {{ hs256_secret = \"{SECRET}\", issuer = \"ferrygate-tests\", audience = \"chat\" }}"
        ),
    )
}

pub fn claims(sub: &str) -> Value {
    json!({"sub": sub, "iss": "ferrygate-tests", "aud": "chat", "exp": now() + 300})
}

pub fn hs256(claims: &Value, secret: &str) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .expect("sign")
}

fn rs256(claims: &Value, private_pem: &str) -> String {
    let key = EncodingKey::from_rsa_pem(private_pem.as_bytes()).expect("rsa key");
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), claims, &key).expect("sign")
}

async fn jwt_gateway() -> TestGateway {
    let public = fixture("rs256-test-public.pem");
    let config = format!(
        "config = {{ hs256_secret = \"{SECRET}\", rs256_public_key_pem = {public:?}, issuer = \"ferrygate-tests\", audience = \"chat\" }}"
    );
    TestGateway::start(&section("auth", "auth", "jwt_auth", &config)).await
}

/// The status and JSON body of an upgrade attempt with `token` in the query.
async fn attempt(gateway: &TestGateway, token: Option<&str>) -> (u16, Value) {
    attempt_at(gateway.addr, token).await
}

/// The status and JSON body of an upgrade attempt on `addr` with `token` in
/// the query.
pub async fn attempt_at(addr: std::net::SocketAddr, token: Option<&str>) -> (u16, Value) {
    let path = token.map_or("/ws".to_owned(), |t| format!("/ws?token={t}"));
    let (status, body) = crate::support::http(
        addr,
        "GET",
        &path,
        &[
            ("Connection", "Upgrade"),
            ("Upgrade", "websocket"),
            ("Sec-WebSocket-Version", "13"),
            ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ],
        "",
    )
    .await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_good_token_reaches_welcome_with_its_user_id_by_every_route() {
    let gateway = jwt_gateway().await;

    let by_query = Client::connect(&format!(
        "{}?token={}",
        gateway.ws_url(),
        hs256(&claims("alice"), SECRET)
    ))
    .await;
    assert_eq!(by_query.welcome["user"], "alice", "{}", by_query.welcome);

    let mut request = gateway.ws_url().into_client_request().expect("request");
    let bearer = format!(
        "Bearer {}",
        rs256(&claims("bob"), &fixture("rs256-test-private.pem"))
    );
    request
        .headers_mut()
        .insert("authorization", bearer.parse().expect("header"));
    let by_header = Client::connect_request(request).await;
    assert_eq!(by_header.welcome["user"], "bob", "{}", by_header.welcome);

    let mut request = gateway.ws_url().into_client_request().expect("request");
    let offered = format!("ferrygate.v1, bearer.{}", hs256(&claims("carol"), SECRET));
    request
        .headers_mut()
        .insert("sec-websocket-protocol", offered.parse().expect("header"));
    let by_subprotocol = Client::connect_request(request).await;
    assert_eq!(
        by_subprotocol.welcome["user"], "carol",
        "{}",
        by_subprotocol.welcome
    );
    gateway.stop().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_with_401_before_the_upgrade() {
    let gateway = jwt_gateway().await;
    let mut expired = claims("alice");
    expired["exp"] = json!(now() - 600);
    let mut not_yet = claims("alice");
    not_yet["nbf"] = json!(now() + 600);
    let mut wrong_issuer = claims("alice");
    wrong_issuer["iss"] = json!("someone-else");
    let mut wrong_audience = claims("alice");
    wrong_audience["aud"] = json!("billing");
    let cases = [
        ("missing", None),
        ("garbage", Some("not-a-token".to_owned())),
        ("expired", Some(hs256(&expired, SECRET))),
        ("not yet valid", Some(hs256(&not_yet, SECRET))),
        (
            "wrong HS256 secret",
            Some(hs256(&claims("alice"), "another-secret-entirely")),
        ),
        (
            "wrong RSA key",
            Some(rs256(&claims("alice"), &fixture("rs256-other-private.pem"))),
        ),
        ("wrong issuer", Some(hs256(&wrong_issuer, SECRET))),
        ("wrong audience", Some(hs256(&wrong_audience, SECRET))),
    ];
    for (case, token) in &cases {
        let (status, body) = attempt(&gateway, token.as_deref()).await;
        assert_eq!(status, 401, "{case}: {body}");
        assert_eq!(body["error"]["code"], "unauthorized", "{case}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()),
            "{case}: {body}"
        );
    }
    let refused = gateway
        .metric("ferrygate_upgrades_refused_total{reason=\"auth\"}")
        .await;
    assert_eq!(refused, cases.len() as f64);
    assert_eq!(
        gateway.metric("ferrygate_connections_opened_total").await,
        0.0
    );
    gateway.stop().await;
}
