// {{name}}: an auth plugin. Admits a client whose token is one of the keys of
// config.keys (token -> user id); refuses the others.
import { config, log, admit, refuse } from './ferrygate.js';

export const lifecycle = {
  init() {
    const keys = config().keys;
    if (keys === null || typeof keys !== 'object') throw 'config.keys must be a table of token = user';
    log.info('ready');
  },
};

export const authenticate = {
  // request: { path, query, headers, remoteAddress, token, nowUnixMs }
  authenticate(request) {
    if (request.token === undefined) return refuse(401, 'missing token');
    const user = config().keys[request.token];
    return typeof user === 'string' ? admit(user) : refuse(401, 'unknown token');
  },
};
