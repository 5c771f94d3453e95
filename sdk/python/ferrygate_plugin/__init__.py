"""Helpers for ferrygate plugins written in Python (componentize-py).

They wrap the bindings componentize-py generates from the gateway's WIT
(`componentize-py -d wit -w <kind> bindings .` writes them into `wit_world/`),
the way `ferrygate-sdk` does for Rust:

- `config()`: the plugin's `config` table, parsed from JSON once per instance.
- `log.debug/info/warn/error(message)`: one line in the gateway's log, tagged
  with the plugin's name and version (the gateway caps lines and their rate).
- `parse(text)` / `dumps(value)`: JSON in and compact JSON out, for payloads.
- `ConfigError`: raise it from `init` to refuse a config; the message becomes
  the reason `ferrygate check` and the reload report show.

`ferrygate plugin new --lang python` copies this folder beside the plugin's
module, where componentize-py finds it; elsewhere, put its parent on the
tool's path (`componentize-py -d wit -w route componentize app -p . -p
path/to/sdk/python -o plugin.wasm`).
"""

import json
from typing import Any, Dict

from componentize_py_types import Err
from wit_world.imports import host

_config: Dict[str, Any] | None = None


class ConfigError(Err):
    """A refused config: `raise ConfigError("rooms must be a table")` in `init`."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)


def config() -> Dict[str, Any]:
    """The plugin's config table (a dict), parsed once per instance."""
    global _config
    if _config is None:
        value = json.loads(host.config())
        if not isinstance(value, dict):
            raise ConfigError("the config is not a table")
        _config = value
    return _config


def parse(text: str) -> Any:
    """A JSON payload as Python values."""
    return json.loads(text)


def dumps(value: Any) -> str:
    """Compact JSON text for a payload or a claims object."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


class _Log:
    """`log.info("...")` and friends: the gateway's log, not stdout."""

    def debug(self, message: str) -> None:
        host.log(host.LogLevel.DEBUG, message)

    def info(self, message: str) -> None:
        host.log(host.LogLevel.INFO, message)

    def warn(self, message: str) -> None:
        host.log(host.LogLevel.WARN, message)

    def error(self, message: str) -> None:
        host.log(host.LogLevel.ERROR, message)


log = _Log()
