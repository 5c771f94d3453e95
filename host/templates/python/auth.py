"""{{name}}: an auth plugin. Admits a client whose token is one of the keys of
config.keys (token -> user id); refuses the others."""

from ferrygate_plugin import ConfigError, config, log
from wit_world import exports
from wit_world.exports.authenticate import (
    Admission,
    ConnectRequest,
    Denial,
    Verdict,
    Verdict_Allow,
    Verdict_Deny,
)
from wit_world.imports.types import Identity


class Lifecycle(exports.Lifecycle):
    def init(self) -> None:
        if not isinstance(config().get("keys"), dict):
            raise ConfigError("keys must be a table of token = user")
        log.info("ready")


class Authenticate(exports.Authenticate):
    def authenticate(self, request: ConnectRequest) -> Verdict:
        if request.token is None:
            return Verdict_Deny(Denial(401, "missing token"))
        user = config()["keys"].get(request.token)
        if not isinstance(user, str):
            return Verdict_Deny(Denial(401, "unknown token"))
        # No expiry: keys do not expire. Pass a Unix time in ms to have the
        # gateway close the connection (4001) then unless it refreshes.
        return Verdict_Allow(Admission(Identity(user, "{}"), None))
