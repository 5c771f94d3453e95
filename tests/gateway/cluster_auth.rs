//! Credentials and TLS reach the broker the way each client takes them:
//! NATS user/password and TLS with a private CA, Redis `requirepass`. A wrong
//! secret is a clear start-up error, never a gateway that half works.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::cluster::{BrokerServer, Instance, Kind};
use crate::support::binary::spawn_and_wait_for_address;
use crate::support::{Client, PATIENCE, api};

/// Two instances with `broker_keys`: a publish on A reaches a subscriber on B.
async fn crosses_instances(server: &BrokerServer, broker_keys: &str) {
    let a = Instance::start(server, broker_keys);
    let b = Instance::start(server, broker_keys);
    let mut client = b.client().await;
    client.subscribe("secure").await;
    let (status, body) = a
        .api("/v1/publish", &json!({"channel":"secure","data":"ok"}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(client.recv().await["data"], "ok");
}

/// Starting with `broker_keys` fails with exit status 1 and names the broker.
fn refused(server: &BrokerServer, broker_keys: &str, expected: &str) {
    let keys = format!("{broker_keys}\nconnect_timeout_ms = 500");
    let (_dir, command) = Instance::command(server, &keys);
    refused_command(command, expected);
}

/// Running `command` fails with exit status 1, says `expected`, and shows no secret.
fn refused_command(mut command: Command, expected: &str) {
    let mut child = command
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ferrygate");
    let deadline = Instant::now() + PATIENCE;
    while child.try_wait().expect("try_wait").is_none() {
        assert!(
            Instant::now() < deadline,
            "ferrygate ran with a wrong secret"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().expect("output");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(expected), "{stderr}");
    crate::support::canary::assert_clean(&stderr, "the log of a refused start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_user_and_password() {
    let mut server = BrokerServer::reserve(Kind::Nats);
    server.args = ["--user", "gateway", "--pass", "s3cret-c4nary-9f2e"]
        .map(String::from)
        .to_vec();
    server.restart();
    crosses_instances(
        &server,
        "username = \"gateway\"\npassword = \"s3cret-c4nary-9f2e\"",
    )
    .await;
    refused(
        &server,
        "username = \"gateway\"\npassword = \"wrong-s3cret-c4nary-9f2e\"",
        "cannot reach NATS",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_password() {
    let mut server = BrokerServer::reserve(Kind::Redis);
    server.args = ["--requirepass", "s3cret-c4nary-9f2e"]
        .map(String::from)
        .to_vec();
    server.restart();
    crosses_instances(&server, "password = \"s3cret-c4nary-9f2e\"").await;
    refused(
        &server,
        "password = \"wrong-s3cret-c4nary-9f2e\"",
        "cannot reach Redis",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_tls_with_a_private_ca() {
    let mut server = BrokerServer::reserve(Kind::Nats);
    let dir = server.dir.0.clone();
    let openssl = |args: &[&str]| {
        let status = Command::new("openssl")
            .args(args)
            .current_dir(&dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .expect("run openssl");
        assert!(status.success(), "openssl {args:?}");
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
        "-days",
        "1",
        "-subj",
        "/CN=ferrygate-test-ca",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "server.key",
        "-out",
        "server.csr",
        "-subj",
        "/CN=127.0.0.1",
    ]);
    std::fs::write(dir.join("ext.cnf"), "subjectAltName=IP:127.0.0.1\n").expect("write ext");
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "server.pem",
        "-days",
        "1",
        "-extfile",
        "ext.cnf",
    ]);
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    server.args = vec![
        "--tls".into(),
        "--tlscert".into(),
        path("server.pem"),
        "--tlskey".into(),
        path("server.key"),
    ];
    server.scheme = "tls";
    server.restart();
    crosses_instances(&server, &format!("tls_ca_file = \"{}\"", path("ca.pem"))).await;
    // Without the CA the server's certificate is not trusted.
    refused(&server, "", "cannot reach NATS");
}

/// A password inside a broker URL (`redis://:password@host`, as some
/// deployments write it): it works, and neither the log (even at `debug`,
/// where client libraries print the address they dial) nor the start-up
/// error of a wrong one shows it. (NATS ignores URL credentials, so the
/// manifest refuses them there; see `config::broker`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_in_a_broker_url_never_reaches_the_log() {
    const PASSWORD: &str = "url-pass-c4nary-9f2e";
    let mut server = BrokerServer::reserve(Kind::Redis);
    server.args = ["--requirepass", PASSWORD].map(String::from).to_vec();
    server.restart();
    let broker = |password: &str| {
        format!(
            "kind = \"redis\"\nurls = [\"redis://:{password}@127.0.0.1:{}\"]\nconnect_timeout_ms = 500",
            server.port
        )
    };
    let (_dir, mut command) = Instance::command_with(&broker(PASSWORD));
    command.env("RUST_LOG", "debug");
    // Every line it logs is checked for the canary as it is read.
    let (mut child, addr) = spawn_and_wait_for_address(command);
    let mut client = Client::connect(&format!("ws://{addr}/ws")).await;
    client.subscribe("secure").await;
    let (status, body) = api(
        addr,
        "/v1/publish",
        &json!({"channel":"secure","data":"ok"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(client.recv().await["data"], "ok");
    let _ = child.kill();
    let _ = child.wait();

    let (_dir, command) = Instance::command_with(&broker("wrong-c4nary-9f2e"));
    refused_command(
        command,
        "cannot reach Redis at redis://:[redacted]@127.0.0.1:",
    );
}
