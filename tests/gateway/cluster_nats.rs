//! Three ferrygate processes on a real `nats-server`: cross-instance fan-out,
//! interest, direct messages, rpc, malformed input and a broker outage.

use crate::cluster::Kind::Nats;
use crate::cluster::{faults, scenarios};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fan_out_reaches_every_instance_exactly_once_in_order() {
    scenarios::fan_out_reaches_every_instance_exactly_once_in_order(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_interest_follows_local_subscribers() {
    scenarios::broker_interest_follows_local_subscribers(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direct_messages_reach_a_connection_on_another_instance() {
    scenarios::direct_messages_reach_a_connection_on_another_instance(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rpc_reaches_a_backend_responder() {
    scenarios::rpc_reaches_a_backend_responder(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_broker_messages_are_counted_and_dropped() {
    faults::malformed_broker_messages_are_counted_and_dropped(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_outage_refuses_publishes_and_recovers() {
    faults::broker_outage_refuses_publishes_and_recovers(Nats).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_payload_crosses_the_broker() {
    scenarios::a_null_payload_crosses_the_broker(Nats).await;
}
