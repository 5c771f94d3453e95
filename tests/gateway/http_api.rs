//! The HTTP API: health, readiness, metrics, and the key-guarded `/v1/`.

use serde_json::{Value, json};

use crate::support::{API_KEY, TestGateway};

#[tokio::test]
async fn health_readiness_and_metrics_need_no_key() {
    let gateway = TestGateway::start("").await;
    assert_eq!(gateway.http("GET", "/healthz", &[], "").await.0, 200);
    assert_eq!(gateway.http("GET", "/readyz", &[], "").await.0, 200);
    let (status, text) = gateway.http("GET", "/metrics", &[], "").await;
    assert_eq!(status, 200);
    assert!(text.contains("ferrygate_connections "), "{text}");
    // Exported before the first refusal, for dashboards and alerts.
    assert!(
        text.contains("ferrygate_upgrades_refused_total{reason=\"pending\"} 0"),
        "{text}"
    );
    let (status, body) = gateway.http("GET", "/nope", &[], "").await;
    assert_eq!(status, 404);
    assert!(body.contains("not_found"));
    gateway.stop().await;
}

/// The names every Prometheus client exports for its process, so that an
/// operator's stock dashboards work: descriptors beside their limit (what
/// `max_connections` must fit in), memory, CPU. Open sessions show in
/// `process_open_fds`.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn metrics_carry_the_process_figures() {
    use crate::support::metric_value;
    let gateway = TestGateway::start("").await;
    let (_, before) = gateway.http("GET", "/metrics", &[], "").await;
    let mut clients = Vec::new();
    for _ in 0..20 {
        clients.push(gateway.client().await);
    }
    let (_, after) = gateway.http("GET", "/metrics", &[], "").await;
    assert!(after.ends_with("# EOF\n"), "one exposition: {after}");
    let fds = |text: &str| metric_value(text, "process_open_fds");
    // Each session holds a socket on each side: both are this process.
    assert!(fds(&after) >= fds(&before) + 20.0, "{before}\n{after}");
    assert!(
        metric_value(&after, "process_max_fds") >= fds(&after),
        "{after}"
    );
    assert!(
        metric_value(&after, "process_resident_memory_bytes") > 1_000_000.0,
        "{after}"
    );
    assert!(after.contains("\nprocess_cpu_seconds_total "), "{after}");
    drop(clients);
    gateway.stop().await;
}

#[tokio::test]
async fn publish_requires_the_api_key() {
    let gateway = TestGateway::start("").await;
    let mut subscriber = gateway.client().await;
    subscriber.subscribe("alerts").await;
    let body = json!({"channel":"alerts","data":{"level":"high"}}).to_string();
    let json_type = ("Content-Type", "application/json");

    for headers in [
        vec![json_type],
        vec![json_type, ("Authorization", "Bearer wrong")],
        vec![json_type, ("X-API-Key", "")],
    ] {
        let (status, text) = gateway.http("POST", "/v1/publish", &headers, &body).await;
        assert_eq!(status, 401, "{headers:?}");
        let error: Value = serde_json::from_str(&text).expect("JSON error body");
        assert_eq!(error["error"]["code"], "unauthorized");
    }
    assert_eq!(
        gateway.metric("ferrygate_api_unauthorized_total").await,
        3.0
    );

    let bearer = format!("Bearer {API_KEY}");
    let (status, _) = gateway
        .http(
            "POST",
            "/v1/publish",
            &[json_type, ("Authorization", &bearer)],
            &body,
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = gateway
        .http(
            "POST",
            "/v1/publish",
            &[json_type, ("X-API-Key", API_KEY)],
            &body,
        )
        .await;
    assert_eq!(status, 200);
    for _ in 0..2 {
        assert_eq!(
            subscriber.recv().await,
            json!({"channel":"alerts","data":{"level":"high"}})
        );
    }
    assert_eq!(
        gateway
            .metric("ferrygate_messages_published_total{source=\"http\"}")
            .await,
        2.0
    );

    let (status, error) = gateway
        .api("/v1/publish", &json!({"channel":"a b","data":1}))
        .await;
    assert_eq!(
        (status, &error["error"]["code"]),
        (400, &json!("bad_request"))
    );
    let (status, _) = gateway.api("/v1/publish", &json!({"channel":"a"})).await;
    assert_eq!(status, 400, "data is required");
    gateway.stop().await;
}

#[tokio::test]
async fn send_reaches_one_connection_and_reports_unknown_targets() {
    let gateway = TestGateway::start("").await;
    let mut target = gateway.client().await;
    let mut other = gateway.client().await;

    let (status, reply) = gateway
        .api("/v1/send", &json!({"conn": target.conn, "data": {"hi": 1}}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["delivered"], 1);
    assert_eq!(target.recv().await, json!({"op":"message","data":{"hi":1}}));
    let reply = other.request(json!({"op":"ping"})).await;
    assert_eq!(reply["ok"], true, "only the target got it");

    let (status, reply) = gateway
        .api("/v1/send", &json!({"conn": "nobody-1", "data": 1}))
        .await;
    assert_eq!(
        (status, &reply["error"]["code"]),
        (404, &json!("not_found"))
    );
    let (status, reply) = gateway
        .api("/v1/send", &json!({"user": "offline-user", "data": 1}))
        .await;
    assert_eq!(
        (status, &reply["delivered"]),
        (200, &json!(0)),
        "an offline user is not an error"
    );
    let (status, _) = gateway
        .api("/v1/send", &json!({"user":"u","conn":"c","data":1}))
        .await;
    assert_eq!(status, 400, "exactly one target");

    let (status, _) = gateway
        .http(
            "POST",
            "/v1/send",
            &[("Content-Type", "application/json")],
            r#"{"conn":"x","data":1}"#,
        )
        .await;
    assert_eq!(status, 401);
    gateway.stop().await;
}
