"""{{name}}: a route plugin. Lets anyone subscribe; lets only signed-in users
publish; refuses the channels listed in config.closed."""

from ferrygate_plugin import ConfigError, config, log
from wit_world import exports
from wit_world.exports.router import Action, Decision, Decision_Allow, Decision_Deny, RouteRequest


class Lifecycle(exports.Lifecycle):
    def init(self) -> None:
        if not isinstance(config().get("closed", []), list):
            raise ConfigError("closed must be a list of channels")
        log.info("ready")


class Router(exports.Router):
    def route(self, request: RouteRequest) -> Decision:
        if request.channel in config().get("closed", []):
            return Decision_Deny("closed")
        if request.action == Action.PUBLISH and request.connection.identity.user is None:
            return Decision_Deny("sign in to publish")
        return Decision_Allow()
