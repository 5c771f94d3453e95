//! The decision for one request: first who may do it (on the channel the
//! client named), then where it goes (rpc, fan-out or rewrite rules, first
//! match of each, in that order).

use ferrygate_sdk::serde_json::Value;
use ferrygate_sdk::{Action, Decision, RouteRequest, log};

use crate::config::{Config, Publisher};
use crate::pattern::Pattern;

/// Decides on `request`. Reasons name the channel and the rule that refused.
pub fn decide(config: &Config, request: &RouteRequest) -> Decision {
    let access = match request.action {
        Action::Subscribe => may_subscribe(config, request),
        Action::Publish => may_publish(config, request),
    };
    match access {
        Ok(()) => route(config, request),
        Err(reason) => Decision::Deny(reason),
    }
}

fn may_subscribe(config: &Config, request: &RouteRequest) -> Result<(), String> {
    let channel = &request.channel;
    if let Some(owner_check) = private_owner_check(config, request) {
        return owner_check;
    }
    if config.public.iter().any(|pattern| pattern.matches(channel)) || claim_allows(config, request)
    {
        return Ok(());
    }
    Err(format!("not allowed to subscribe to {channel}"))
}

fn may_publish(config: &Config, request: &RouteRequest) -> Result<(), String> {
    let channel = &request.channel;
    let user = request.user();
    if let Some(rule) = config
        .publish
        .iter()
        .find(|rule| rule.channels.matches(channel))
    {
        return match &rule.allow {
            Publisher::Anyone => Ok(()),
            Publisher::SignedIn if user.is_some() => Ok(()),
            Publisher::SignedIn => Err(format!("sign in to publish to {channel}")),
            Publisher::Owner => {
                let owner = rule.channels.captures(channel).and_then(|c| c.owner);
                if owner.is_some() && owner.as_deref() == user {
                    Ok(())
                } else {
                    Err(format!("only the owner may publish to {channel}"))
                }
            }
            Publisher::Nobody => Err(format!("publishing to {channel} is not allowed")),
            Publisher::Claim { claim, equals } if claim_has(request, claim, equals) => Ok(()),
            Publisher::Claim { claim, equals } => Err(format!(
                "publishing to {channel} needs claim {claim} = {equals}"
            )),
        };
    }
    if let Some(owner_check) = private_owner_check(config, request) {
        return owner_check;
    }
    if claim_allows(config, request) {
        return Ok(());
    }
    Err(format!("not allowed to publish to {channel}"))
}

/// `Some` when the channel is private (matches a `private` pattern): only
/// the user its `{user}` token names may use it.
fn private_owner_check(config: &Config, request: &RouteRequest) -> Option<Result<(), String>> {
    let channel = &request.channel;
    let captures = config
        .private
        .iter()
        .find_map(|pattern| pattern.captures(channel))?;
    let is_owner = captures.owner.is_some() && captures.owner.as_deref() == request.user();
    Some(if is_owner {
        Ok(())
    } else {
        Err(format!("{channel} is private to its owner"))
    })
}

/// Whether the identity's `channels_claim` lists a pattern matching the channel.
fn claim_allows(config: &Config, request: &RouteRequest) -> bool {
    let Some(name) = &config.channels_claim else {
        return false;
    };
    let Ok(claims) = request.connection.identity.claims_json() else {
        return false;
    };
    let Some(Value::Array(patterns)) = claims.get(name) else {
        return false;
    };
    patterns
        .iter()
        .filter_map(Value::as_str)
        .any(|text| match Pattern::parse(text) {
            Ok(pattern) => pattern.matches(&request.channel),
            Err(reason) => {
                log::warn!("ignoring a pattern in claim {name}: {reason}");
                false
            }
        })
}

/// Whether claim `claim` equals `equals`, or is a list containing it.
fn claim_has(request: &RouteRequest, claim: &str, equals: &str) -> bool {
    let Ok(claims) = request.connection.identity.claims_json() else {
        return false;
    };
    match claims.get(claim) {
        Some(Value::String(value)) => value == equals,
        Some(Value::Array(values)) => values.iter().any(|value| value.as_str() == Some(equals)),
        _ => false,
    }
}

fn route(config: &Config, request: &RouteRequest) -> Decision {
    let channel = &request.channel;
    let user = request.user();
    let rendered = if request.action == Action::Publish
        && let Some((rule, captures)) = first_match(&config.rpc, |r| &r.channels, channel)
    {
        rule.method.render(&captures, user).map(Decision::Rpc)
    } else if let Some((rule, captures)) = first_match(&config.fan_out, |r| &r.channels, channel) {
        rule.to
            .iter()
            .map(|template| template.render(&captures, user))
            .collect::<Result<Vec<_>, _>>()
            .map(Decision::FanOut)
    } else if let Some((rule, captures)) = first_match(&config.rewrite, |r| &r.channels, channel) {
        rule.to.render(&captures, user).map(Decision::Rewrite)
    } else {
        Ok(Decision::Allow)
    };
    rendered.unwrap_or_else(Decision::Deny)
}

fn first_match<'a, R>(
    rules: &'a [R],
    pattern: impl Fn(&R) -> &Pattern,
    channel: &str,
) -> Option<(&'a R, crate::pattern::Captures)> {
    rules.iter().find_map(|rule| {
        pattern(rule)
            .captures(channel)
            .map(|captures| (rule, captures))
    })
}
