"""room-rules: a Python route plugin. Decides who may subscribe to and publish
on each room from per-room rules in its config; rooms without rules follow
`default`.

    config = { prefix = "room.", default = "users", rooms = {
        lobby = { subscribe = "anyone", publish = "users", max_bytes = 2048 },
        staff = { subscribe = ["alice", "bob"], publish = ["alice"] },
        news = { subscribe = "anyone", publish = "nobody" } } }

A rule is "anyone", "users" (an authenticated user), "nobody", or a list of
user ids. A channel outside `prefix` is allowed unchanged. `max_bytes` caps a
publish's payload (JSON text length in bytes).

Built by `cargo xtask build-plugins` with componentize-py's default command
(plus the helpers' path):
    componentize-py -d wit -w route componentize app -p . -p sdk/python -o room_rules.wasm
"""

from typing import Any, Dict

from ferrygate_plugin import ConfigError, config, log
from wit_world import exports
from wit_world.exports.router import (
    Action,
    Decision,
    Decision_Allow,
    Decision_Deny,
    RouteRequest,
)

RULES = ("anyone", "users", "nobody")
_settings: Dict[str, Any] = {}


def _rule(value: Any, where: str) -> Any:
    if value in RULES:
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return frozenset(value)
    raise ConfigError(f"{where} must be one of {', '.join(RULES)} or a list of user ids")


def _load() -> Dict[str, Any]:
    raw = config()
    prefix = raw.get("prefix", "room.")
    if not isinstance(prefix, str):
        raise ConfigError("prefix must be a string")
    default = _rule(raw.get("default", "users"), "default")
    rooms: Dict[str, Dict[str, Any]] = {}
    table = raw.get("rooms", {})
    if not isinstance(table, dict):
        raise ConfigError("rooms must be a table of room names")
    for name, rules in table.items():
        if not isinstance(rules, dict):
            raise ConfigError(f"rooms.{name} must be a table")
        unknown = set(rules) - {"subscribe", "publish", "max_bytes"}
        if unknown:
            raise ConfigError(f"rooms.{name}: unknown key {sorted(unknown)[0]}")
        max_bytes = rules.get("max_bytes", 0)
        if not isinstance(max_bytes, int) or max_bytes < 0:
            raise ConfigError(f"rooms.{name}.max_bytes must be a whole number")
        rooms[name] = {
            "subscribe": _rule(rules.get("subscribe", default), f"rooms.{name}.subscribe"),
            "publish": _rule(rules.get("publish", default), f"rooms.{name}.publish"),
            "max_bytes": max_bytes,
        }
    return {"prefix": prefix, "default": default, "rooms": rooms}


def _admits(rule: Any, user: str | None) -> bool:
    if rule == "anyone":
        return True
    if rule == "users":
        return user is not None
    if rule == "nobody":
        return False
    return user in rule


class Lifecycle(exports.Lifecycle):
    def init(self) -> None:
        _settings.update(_load())
        log.info(f"{len(_settings['rooms'])} rooms with rules")


class Router(exports.Router):
    def route(self, request: RouteRequest) -> Decision:
        prefix = _settings["prefix"]
        if not request.channel.startswith(prefix):
            return Decision_Allow()
        room = request.channel[len(prefix):]
        default = _settings["default"]
        rules = _settings["rooms"].get(room, {"subscribe": default, "publish": default, "max_bytes": 0})
        user = request.connection.identity.user
        verb = "subscribe" if request.action == Action.SUBSCRIBE else "publish"
        if not _admits(rules[verb], user):
            return Decision_Deny(f"room {room}: {verb} not allowed")
        size = len((request.data or "").encode())
        if verb == "publish" and rules["max_bytes"] and size > rules["max_bytes"]:
            return Decision_Deny(f"room {room}: payload over {rules['max_bytes']} bytes")
        return Decision_Allow()
