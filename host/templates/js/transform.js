// {{name}}: a transform plugin. Adds "seen_by": "{{name}}" to object
// payloads, and drops a payload whose text contains config.drop_word.
import { config, log, keep, keepText, drop, parse } from './ferrygate.js';

export const lifecycle = {
  init() {
    const word = config().drop_word;
    if (word !== undefined && typeof word !== 'string') throw 'config.drop_word must be a string';
    log.info('ready');
  },
};

export const transformer = {
  // message: { direction, channel, connection, data }
  transform(message) {
    const word = config().drop_word;
    if (word && message.data.includes(word)) return drop();
    const payload = parse(message.data);
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return keepText(message.data);
    }
    payload.seen_by = '{{name}}';
    return keep(payload);
  },
};
