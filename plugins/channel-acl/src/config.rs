//! channel-acl's `config` table: access rules (`public`, `private`,
//! `channels_claim`, `publish`) and routing rules (`rpc`, `fan_out`,
//! `rewrite`), all checked when the plugin loads.

use serde::Deserialize;

use crate::pattern::{Pattern, Template};

/// The checked config.
#[derive(Debug, Deserialize)]
#[serde(try_from = "RawConfig")]
pub struct Config {
    pub public: Vec<Pattern>,
    pub private: Vec<Pattern>,
    pub channels_claim: Option<String>,
    pub publish: Vec<PublishRule>,
    pub rpc: Vec<RpcRule>,
    pub fan_out: Vec<FanOutRule>,
    pub rewrite: Vec<RewriteRule>,
}

/// Who may publish on the channels a rule names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Publisher {
    /// Anyone, signed in or not.
    Anyone,
    /// Any signed-in user.
    SignedIn,
    /// The user named by the pattern's `{user}` token.
    Owner,
    /// No one.
    Nobody,
    /// Users whose claim `claim` equals `equals` (or, for a list, contains it).
    Claim { claim: String, equals: String },
}

/// `{ channels = "chat.*", allow = "anyone" }` or
/// `{ channels = "admin.>", claim = "role", equals = "admin" }`.
#[derive(Debug)]
pub struct PublishRule {
    pub channels: Pattern,
    pub allow: Publisher,
}

/// `{ channels = "orders.*", method = "orders.{1}" }`: publishes become rpcs.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RpcRule {
    pub channels: Pattern,
    pub method: Template,
}

/// `{ channels = "alerts.*", to = ["alerts.{1}.eu", "alerts.{1}.us"] }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FanOutRule {
    pub channels: Pattern,
    pub to: Vec<Template>,
}

/// `{ channels = "chat.*", to = "chat.{1}.eu" }`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RewriteRule {
    pub channels: Pattern,
    pub to: Template,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    public: Vec<Pattern>,
    #[serde(default = "default_private")]
    private: Vec<Pattern>,
    channels_claim: Option<String>,
    #[serde(default)]
    publish: Vec<RawPublishRule>,
    #[serde(default)]
    rpc: Vec<RpcRule>,
    #[serde(default)]
    fan_out: Vec<FanOutRule>,
    #[serde(default)]
    rewrite: Vec<RewriteRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPublishRule {
    channels: Pattern,
    allow: Option<String>,
    claim: Option<String>,
    equals: Option<String>,
}

fn default_private() -> Vec<Pattern> {
    ["user.{user}", "user.{user}.>"]
        .into_iter()
        .filter_map(|text| Pattern::parse(text).ok())
        .collect()
}

impl TryFrom<RawConfig> for Config {
    type Error = String;

    fn try_from(raw: RawConfig) -> Result<Self, String> {
        if let Some(pattern) = raw.private.iter().find(|p| !p.has_owner()) {
            return Err(format!(
                "private pattern {:?} has no {{user}} token",
                pattern.as_str()
            ));
        }
        let publish = raw
            .publish
            .into_iter()
            .map(PublishRule::try_from)
            .collect::<Result<Vec<_>, _>>()?;
        for rule in &raw.rpc {
            check_template(&rule.channels, &rule.method, "rpc")?;
        }
        for rule in &raw.fan_out {
            if rule.to.is_empty() {
                return Err(format!(
                    "fan_out rule for {:?} has no channels in `to`",
                    rule.channels.as_str()
                ));
            }
            for template in &rule.to {
                check_template(&rule.channels, template, "fan_out")?;
            }
        }
        for rule in &raw.rewrite {
            check_template(&rule.channels, &rule.to, "rewrite")?;
        }
        Ok(Self {
            public: raw.public,
            private: raw.private,
            channels_claim: raw.channels_claim,
            publish,
            rpc: raw.rpc,
            fan_out: raw.fan_out,
            rewrite: raw.rewrite,
        })
    }
}

impl TryFrom<RawPublishRule> for PublishRule {
    type Error = String;

    fn try_from(raw: RawPublishRule) -> Result<Self, String> {
        let channels = raw.channels.as_str().to_owned();
        let allow = match (raw.allow.as_deref(), raw.claim, raw.equals) {
            (Some("anyone"), None, None) => Publisher::Anyone,
            (Some("signed-in"), None, None) => Publisher::SignedIn,
            (Some("owner"), None, None) if raw.channels.has_owner() => Publisher::Owner,
            (Some("owner"), None, None) => {
                return Err(format!(
                    "publish rule for {channels:?}: allow = \"owner\" needs a {{user}} token in the pattern"
                ));
            }
            (Some("nobody"), None, None) => Publisher::Nobody,
            (None, Some(claim), Some(equals)) => Publisher::Claim { claim, equals },
            (Some(other), None, None) => {
                return Err(format!(
                    "publish rule for {channels:?}: allow = {other:?} is not one of \"anyone\", \"signed-in\", \"owner\", \"nobody\""
                ));
            }
            _ => {
                return Err(format!(
                    "publish rule for {channels:?}: give either `allow` or both `claim` and `equals`"
                ));
            }
        };
        Ok(Self {
            channels: raw.channels,
            allow,
        })
    }
}

fn check_template(pattern: &Pattern, template: &Template, rule: &str) -> Result<(), String> {
    let needed = template.highest_wildcard();
    if needed > pattern.wildcard_count() {
        return Err(format!(
            "{rule} rule for {:?} uses {{{needed}}} but the pattern has {} wildcard(s)",
            pattern.as_str(),
            pattern.wildcard_count()
        ));
    }
    Ok(())
}
