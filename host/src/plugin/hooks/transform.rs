//! `transform`: one call per published message and inbound transform, before
//! fan-out, so its cost does not grow with the number of recipients.

use serde_json::value::RawValue;

use super::wrong_kind;
use crate::metrics::Cause;
use crate::plugin::bindings::Connection;
use crate::plugin::bindings::transform::exports::ferrygate::plugin::transformer::{
    Direction, Message, Outcome,
};
use crate::plugin::instance::{CallError, Exports, Plugin};
use crate::plugin::recording;
use crate::protocol::ChannelName;

/// The checked outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transformed {
    /// Send this payload (valid JSON, within the size limit).
    Keep(String),
    /// Deliver nothing.
    Drop,
}

impl Plugin {
    /// Transforms one inbound payload published on `channel` by `connection`
    /// (`None` for the HTTP API). `max_bytes` bounds the result.
    pub async fn transform_inbound(
        &self,
        channel: &ChannelName,
        connection: Option<&Connection>,
        data: &str,
        max_bytes: usize,
    ) -> Result<Transformed, CallError> {
        let result = self
            .transform_once(channel, connection, data, max_bytes)
            .await;
        if let Some(recorder) = &self.recorder {
            let input = recording::Input::Publish {
                channel: channel.as_str().to_owned(),
                connection: connection.map(recording::Conn::of),
                data: serde_json::from_str(data).unwrap_or(serde_json::Value::Null),
                live: Some(recording::transform_decision(&result)),
            };
            recorder.write(&self.name, &input);
        }
        result
    }

    async fn transform_once(
        &self,
        channel: &ChannelName,
        connection: Option<&Connection>,
        data: &str,
        max_bytes: usize,
    ) -> Result<Transformed, CallError> {
        let message = Message {
            direction: Direction::Inbound,
            channel: channel.as_str().to_owned(),
            connection: connection.cloned(),
            data: data.to_owned(),
        };
        let outcome = self
            .call(async |store, exports| match exports {
                Exports::Transform(transform) => {
                    transform
                        .ferrygate_plugin_transformer()
                        .call_transform(store, &message)
                        .await
                }
                _ => Err(wrong_kind(self, "transform")),
            })
            .await?;
        let checked = match outcome {
            Outcome::Drop => Ok(Transformed::Drop),
            Outcome::Keep(data) if data.len() > max_bytes => Err(format!(
                "returned {} bytes, over the {max_bytes}-byte message limit",
                data.len()
            )),
            Outcome::Keep(data) => match serde_json::from_str::<&RawValue>(&data) {
                Ok(_) => Ok(Transformed::Keep(data)),
                Err(error) => Err(format!("returned text that is not JSON: {error}")),
            },
        };
        checked.map_err(|problem| {
            let error = self.error(Cause::bad_output, problem);
            self.record(&error);
            error
        })
    }
}
