"""{{name}}: a transform plugin. Adds "seen_by": "{{name}}" to object payloads,
and drops a payload whose text contains config.drop_word."""

from ferrygate_plugin import ConfigError, config, dumps, log, parse
from wit_world import exports
from wit_world.exports.transformer import Message, Outcome, Outcome_Drop, Outcome_Keep


class Lifecycle(exports.Lifecycle):
    def init(self) -> None:
        if not isinstance(config().get("drop_word", ""), str):
            raise ConfigError("drop_word must be a string")
        log.info("ready")


class Transformer(exports.Transformer):
    def transform(self, message: Message) -> Outcome:
        word = config().get("drop_word")
        if word and word in message.data:
            return Outcome_Drop()
        payload = parse(message.data)
        if not isinstance(payload, dict):
            return Outcome_Keep(message.data)
        payload["seen_by"] = "{{name}}"
        return Outcome_Keep(dumps(payload))
