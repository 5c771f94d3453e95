"""seen-by, Python: the transform `ferrygate plugin new --lang python --kind
transform` writes, kept here so that the benchmarks compare the same work in
Rust (../seen-by), JavaScript (../seen-by-js) and Python: drops a payload
whose text contains config.drop_word; otherwise parses it and, when it is an
object, adds "seen_by": "seen_by" and serialises it again.

Built by `cargo xtask build-plugins` with componentize-py's default command
(plus the helpers' path):
    componentize-py -d wit -w transform componentize app -p . -p sdk/python -o seen_by_py.wasm
"""

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
        payload["seen_by"] = "seen_by"
        return Outcome_Keep(dumps(payload))
