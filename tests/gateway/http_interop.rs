//! `/v1/` as ordinary HTTP clients call it: the `Bearer` scheme in any case
//! (RFC 9110 §11.1, the same parser as `/ws`), a JSON body without a
//! `Content-Type`, and 415 (not 400) for a body type that is not JSON, such
//! as the form type `curl -d` sends.

use serde_json::{Value, json};

use crate::support::{API_KEY, TestGateway};

#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive_on_the_api() {
    let gateway = TestGateway::start("").await;
    let body = json!({"channel":"alerts","data":1}).to_string();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let auth = format!("{scheme} {API_KEY}");
        let (status, text) = gateway
            .http(
                "POST",
                "/v1/publish",
                &[
                    ("Authorization", &auth),
                    ("Content-Type", "application/json"),
                ],
                &body,
            )
            .await;
        assert_eq!(status, 200, "{scheme}: {text}");
    }
    for auth in ["Basic dGVzdA==", "Bearer", "Bearerx"] {
        let (status, text) = gateway
            .http("GET", "/v1/plugins", &[("Authorization", auth)], "")
            .await;
        assert_eq!(status, 401, "{auth}: {text}");
    }
    gateway.stop().await;
}

#[tokio::test]
async fn a_json_body_needs_no_content_type_and_other_types_get_415() {
    let gateway = TestGateway::start("").await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("alerts").await;
    let auth = format!("Bearer {API_KEY}");
    let publish = json!({"channel":"alerts","data":{"n":1}}).to_string();
    let send = json!({"conn": subscriber.conn, "data":{"n":2}}).to_string();

    for (path, body) in [("/v1/publish", &publish), ("/v1/send", &send)] {
        let (status, text) = gateway
            .http("POST", path, &[("Authorization", &auth)], body)
            .await;
        assert_eq!(status, 200, "{path} without Content-Type: {text}");
        for json_type in ["application/json; charset=utf-8", "Application/JSON"] {
            let (status, text) = gateway
                .http(
                    "POST",
                    path,
                    &[("Authorization", &auth), ("Content-Type", json_type)],
                    body,
                )
                .await;
            assert_eq!(status, 200, "{path} as {json_type}: {text}");
        }
        // `curl -d` sends the form type; so do HTML forms. Not JSON: 415,
        // with a JSON body that says what to send instead.
        for other in ["application/x-www-form-urlencoded", "text/plain"] {
            let (status, text) = gateway
                .http(
                    "POST",
                    path,
                    &[("Authorization", &auth), ("Content-Type", other)],
                    body,
                )
                .await;
            assert_eq!(status, 415, "{path} as {other}: {text}");
            let error: Value = serde_json::from_str(&text).expect("JSON error body");
            assert_eq!(error["error"]["code"], "unsupported_media_type", "{text}");
            assert!(
                error["error"]["message"]
                    .as_str()
                    .is_some_and(|m| m.contains("application/json")),
                "{text}"
            );
        }
        // No type and not JSON: still the 400 of a bad body.
        let (status, text) = gateway
            .http("POST", path, &[("Authorization", &auth)], "channel=alerts")
            .await;
        assert_eq!(status, 400, "{text}");
    }
    for n in [1, 1, 1, 2, 2, 2] {
        let frame = subscriber.recv().await;
        assert_eq!(frame["data"]["n"], n, "{frame}");
    }
    gateway.stop().await;
}
