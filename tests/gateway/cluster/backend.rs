//! A backend service that talks to the broker directly, with the stock
//! client of each broker (async-nats, fred): publishes, and rpc responders.

use fred::prelude::{ClientLike, EventInterface, PubsubInterface};
use futures_util::StreamExt;
use serde_json::Value;
use tokio::task::JoinHandle;

use super::{BrokerServer, Kind};

/// A connected plain broker client.
pub enum Backend {
    Nats(async_nats::Client),
    Redis(fred::prelude::Client),
}

impl Backend {
    pub async fn connect(server: &BrokerServer) -> Self {
        match server.kind {
            Kind::Nats => Self::Nats(
                async_nats::connect(server.url())
                    .await
                    .expect("nats connect"),
            ),
            Kind::Redis => Self::Redis(redis_client(server).await),
        }
    }

    /// Publishes `payload` bytes to `<prefix>{sep}{kind}{sep}{name}` (`kind`: ch, user, conn).
    pub async fn publish(&self, kind: &str, name: &str, payload: &[u8]) {
        match self {
            Self::Nats(client) => {
                client
                    .publish(format!("ferrygate.{kind}.{name}"), payload.to_vec().into())
                    .await
                    .expect("nats publish");
                client.flush().await.expect("nats flush");
            }
            Self::Redis(client) => {
                let _: i64 = client
                    .publish(format!("ferrygate:{kind}:{name}"), payload.to_vec())
                    .await
                    .expect("redis publish");
            }
        }
    }

    /// Answers rpc `method` with each request's data and who called, as the
    /// gateway tells a backend (NATS headers, Redis envelope keys):
    /// `{"echo":data,"caller":{"user":U|null,"conn":C,"node":N}}`, `null`
    /// for what was absent. Returns once the responder is subscribed; abort
    /// the handle to stop it.
    pub async fn respond(server: &BrokerServer, method: &str) -> JoinHandle<()> {
        match server.kind {
            Kind::Nats => {
                let client = async_nats::connect(server.url())
                    .await
                    .expect("nats connect");
                let mut requests = client
                    .subscribe(format!("ferrygate.rpc.{method}"))
                    .await
                    .expect("subscribe");
                client.flush().await.expect("flush");
                tokio::spawn(async move {
                    while let Some(request) = requests.next().await {
                        let data: Value = serde_json::from_slice(&request.payload).expect("json");
                        let header = |name: &str| {
                            let headers = request.headers.as_ref()?;
                            Some(headers.get(name)?.as_str().to_owned())
                        };
                        let caller = serde_json::json!({
                            "user": header("Ferrygate-User"),
                            "conn": header("Ferrygate-Conn"),
                            "node": header("Ferrygate-Node"),
                        });
                        let answer =
                            serde_json::json!({"echo": data, "caller": caller}).to_string();
                        if let Some(reply) = request.reply {
                            client.publish(reply, answer.into()).await.expect("reply");
                        }
                    }
                })
            }
            Kind::Redis => {
                let subscriber = redis_client(server).await;
                let replier = redis_client(server).await;
                let mut requests = subscriber.message_rx();
                subscriber
                    .subscribe(format!("ferrygate:rpc:{method}"))
                    .await
                    .expect("subscribe");
                tokio::spawn(async move {
                    let _keep = subscriber;
                    while let Ok(message) = requests.recv().await {
                        let bytes = message.value.as_bytes().expect("bytes").to_vec();
                        let envelope: Value = serde_json::from_slice(&bytes).expect("json");
                        let reply = envelope["reply"]
                            .as_str()
                            .expect("reply channel")
                            .to_owned();
                        let caller = serde_json::json!({
                            "user": envelope.get("user"),
                            "conn": envelope.get("conn"),
                            "node": envelope.get("node"),
                        });
                        let answer =
                            serde_json::json!({"echo": envelope["data"], "caller": caller})
                                .to_string();
                        let _: i64 = replier.publish(reply, answer).await.expect("reply");
                    }
                })
            }
        }
    }
}

async fn redis_client(server: &BrokerServer) -> fred::prelude::Client {
    let config = fred::prelude::Config::from_url(&server.url()).expect("redis url");
    let client = fred::prelude::Builder::from_config(config)
        .build()
        .expect("client");
    client.init().await.expect("redis connect");
    client
}

/// A responder that takes requests for `method` and never answers.
/// Held only to keep the subscription alive.
pub struct Silent {
    _client: Backend,
    _subscription: Option<async_nats::Subscriber>,
}

impl Backend {
    pub async fn silent(server: &BrokerServer, method: &str) -> Silent {
        match server.kind {
            Kind::Nats => {
                let client = async_nats::connect(server.url())
                    .await
                    .expect("nats connect");
                let subscription = client
                    .subscribe(format!("ferrygate.rpc.{method}"))
                    .await
                    .expect("subscribe");
                client.flush().await.expect("flush");
                Silent {
                    _client: Self::Nats(client),
                    _subscription: Some(subscription),
                }
            }
            Kind::Redis => {
                let client = redis_client(server).await;
                client
                    .subscribe(format!("ferrygate:rpc:{method}"))
                    .await
                    .expect("subscribe");
                Silent {
                    _client: Self::Redis(client),
                    _subscription: None,
                }
            }
        }
    }
}
