// {{name}}: a route plugin. Lets anyone subscribe; lets only signed-in users
// publish; refuses the channels listed in config.closed.
import { config, log, allow, deny } from './ferrygate.js';

export const lifecycle = {
  init() {
    const closed = config().closed ?? [];
    if (!Array.isArray(closed)) throw 'config.closed must be a list of channels';
    log.info('ready');
  },
};

export const router = {
  // request: { action: 'subscribe' | 'publish', channel, connection, data }
  route(request) {
    if ((config().closed ?? []).includes(request.channel)) return deny('closed');
    if (request.action === 'publish' && request.connection.identity.user === undefined) {
      return deny('sign in to publish');
    }
    return allow();
  },
};
