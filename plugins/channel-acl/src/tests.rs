//! Decisions of `ChannelAcl::route` for a realistic config, natively.

use ferrygate_sdk::serde_json::{Value, json};
use ferrygate_sdk::{Action, Connection, Decision, Identity, Route, RouteRequest, parse_config};

use super::{ChannelAcl, Config};

fn config() -> Config {
    parse_config(
        &json!({
            "public": ["news.*", "chat.*", "alerts.*"],
            "channels_claim": "channels",
            "publish": [
                { "channels": "chat.*", "allow": "signed-in" },
                { "channels": "user.{user}.inbox", "allow": "anyone" },
                { "channels": "news.*", "claim": "role", "equals": "editor" },
                { "channels": "alerts.*", "allow": "nobody" },
                { "channels": "profile.{user}", "allow": "owner" },
            ],
            "rewrite": [{ "channels": "chat.*", "to": "chat.{1}.eu" }],
            "fan_out": [{ "channels": "team.*.all", "to": ["team.{1}.eu", "team.{1}.us"] }],
            "rpc": [{ "channels": "orders.*", "method": "orders.{1}" }],
        })
        .to_string(),
    )
    .expect("test config parses")
}

fn request(action: Action, channel: &str, user: Option<&str>, claims: Value) -> RouteRequest {
    RouteRequest {
        action,
        channel: channel.to_owned(),
        connection: Connection {
            id: "c1".to_owned(),
            identity: Identity {
                user: user.map(str::to_owned),
                claims: claims.to_string(),
            },
        },
        data: (action == Action::Publish).then(|| "{}".to_owned()),
    }
}

fn decide(action: Action, channel: &str, user: Option<&str>, claims: Value) -> Decision {
    ChannelAcl::route(&config(), &request(action, channel, user, claims))
        .expect("route never fails")
}

fn subscribe(channel: &str, user: Option<&str>) -> Decision {
    decide(Action::Subscribe, channel, user, json!({}))
}

fn publish(channel: &str, user: Option<&str>) -> Decision {
    decide(Action::Publish, channel, user, json!({}))
}

#[test]
fn private_channels_are_for_their_owner_only() {
    assert_eq!(subscribe("user.ann", Some("ann")), Decision::Allow);
    assert_eq!(subscribe("user.ann.inbox", Some("ann")), Decision::Allow);
    assert_eq!(
        subscribe("user.ann", Some("bob")),
        Decision::deny("user.ann is private to its owner")
    );
    assert_eq!(
        subscribe("user.ann.inbox", None),
        Decision::deny("user.ann.inbox is private to its owner")
    );
    assert_eq!(
        publish("user.ann", Some("bob")),
        Decision::deny("user.ann is private to its owner")
    );
}

#[test]
fn public_patterns_allow_subscribing_but_not_publishing() {
    assert_eq!(subscribe("news.sport", None), Decision::Allow);
    assert_eq!(
        subscribe("secret.room", Some("ann")),
        Decision::deny("not allowed to subscribe to secret.room")
    );
    assert_eq!(
        publish("secret.room", Some("ann")),
        Decision::deny("not allowed to publish to secret.room")
    );
}

#[test]
fn publish_rules_decide_in_order() {
    assert_eq!(
        publish("chat.lobby", None),
        Decision::deny("sign in to publish to chat.lobby")
    );
    assert_eq!(publish("user.ann.inbox", Some("bob")), Decision::Allow);
    assert_eq!(
        publish("alerts.fire", Some("ann")),
        Decision::deny("publishing to alerts.fire is not allowed")
    );
    assert_eq!(publish("profile.ann", Some("ann")), Decision::Allow);
    assert_eq!(
        publish("profile.ann", Some("bob")),
        Decision::deny("only the owner may publish to profile.ann")
    );
}

#[test]
fn claim_rules_check_the_identity_claims() {
    let editor = decide(
        Action::Publish,
        "news.sport",
        Some("ed"),
        json!({ "role": ["reader", "editor"] }),
    );
    assert_eq!(editor, Decision::Allow);
    let reader = decide(
        Action::Publish,
        "news.sport",
        Some("rd"),
        json!({ "role": "reader" }),
    );
    assert_eq!(
        reader,
        Decision::deny("publishing to news.sport needs claim role = editor")
    );
}

#[test]
fn channels_claim_grants_listed_patterns() {
    let claims = json!({ "channels": ["team.blue.>", "bad..pattern"] });
    let allowed = decide(
        Action::Subscribe,
        "team.blue.plans",
        Some("ann"),
        claims.clone(),
    );
    assert_eq!(allowed, Decision::Allow);
    let allowed = decide(
        Action::Publish,
        "team.blue.plans",
        Some("ann"),
        claims.clone(),
    );
    assert_eq!(allowed, Decision::Allow);
    let other_team = decide(Action::Subscribe, "team.red.plans", Some("ann"), claims);
    assert_eq!(
        other_team,
        Decision::deny("not allowed to subscribe to team.red.plans")
    );
}

#[test]
fn allowed_requests_are_rewritten_fanned_out_or_turned_into_rpcs() {
    assert_eq!(
        subscribe("chat.lobby", None),
        Decision::Rewrite("chat.lobby.eu".into())
    );
    assert_eq!(
        publish("chat.lobby", Some("ann")),
        Decision::Rewrite("chat.lobby.eu".into())
    );
    let claims = json!({ "channels": ["team.>", "orders.*"] });
    let fan_out = decide(
        Action::Publish,
        "team.blue.all",
        Some("ann"),
        claims.clone(),
    );
    assert_eq!(
        fan_out,
        Decision::FanOut(vec!["team.blue.eu".into(), "team.blue.us".into()])
    );
    let rpc = decide(
        Action::Publish,
        "orders.create",
        Some("ann"),
        claims.clone(),
    );
    assert_eq!(rpc, Decision::Rpc("orders.create".into()));
    // Rpc rules apply to publishes only.
    let subscription = decide(Action::Subscribe, "orders.create", Some("ann"), claims);
    assert_eq!(subscription, Decision::Allow);
}

/// The gateway presents a client's rpc as a publish on the channel named by
/// its method, so the `publish` rules decide who may call a method.
#[test]
fn publish_rules_decide_who_may_call_a_method() {
    let call = |user, claims| decide(Action::Publish, "news.retract", user, claims);
    assert!(
        matches!(call(Some("ann"), json!({})), Decision::Deny(_)),
        "only editors may call news.*"
    );
    assert_eq!(
        call(Some("eve"), json!({ "role": "editor" })),
        Decision::Allow
    );
}

#[test]
fn bad_configs_name_the_problem() {
    for (config, reason) in [
        (
            json!({ "private": ["user.*"] }),
            "private pattern \"user.*\" has no {user} token",
        ),
        (
            json!({ "public": ["a..b"] }),
            "channel pattern \"a..b\" has an empty token",
        ),
        (
            json!({ "publish": [{ "channels": "a.*", "allow": "everyone" }] }),
            "allow = \"everyone\" is not one of",
        ),
        (
            json!({ "publish": [{ "channels": "a.*", "allow": "owner" }] }),
            "needs a {user} token",
        ),
        (
            json!({ "publish": [{ "channels": "a.*", "claim": "role" }] }),
            "give either `allow` or both `claim` and `equals`",
        ),
        (
            json!({ "rewrite": [{ "channels": "a.*", "to": "b.{2}" }] }),
            "uses {2} but the pattern has 1 wildcard(s)",
        ),
        (
            json!({ "fan_out": [{ "channels": "a.*", "to": [] }] }),
            "has no channels in `to`",
        ),
        (json!({ "pubic": [] }), "unknown field `pubic`"),
    ] {
        let error = parse_config::<Config>(&config.to_string()).expect_err(reason);
        assert!(error.message().contains(reason), "{config}: {error}");
    }
}
