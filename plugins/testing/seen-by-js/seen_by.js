// seen-by, JavaScript: the transform `ferrygate plugin new --lang js --kind
// transform` writes, kept here so that the benchmarks compare the same work
// in Rust (../seen-by), JavaScript and Python (../seen-by-py): drops a
// payload whose text contains config.drop_word; otherwise parses it and, when
// it is an object, adds "seen_by": "seen_by" and serialises it again.
//
// Built by `cargo xtask build-plugins` with componentize-js's default command:
//   componentize-js --wit wit --world-name transform -o seen_by_js.wasm seen_by.js
import { config, log } from 'ferrygate:plugin/host@0.2.0';

let dropWord = null;

export const lifecycle = {
  init() {
    const word = JSON.parse(config()).drop_word;
    if (word !== undefined && typeof word !== 'string') throw 'config.drop_word must be a string';
    dropWord = word ?? null;
    log('info', 'ready');
  },
};

export const transformer = {
  transform(message) {
    if (dropWord && message.data.includes(dropWord)) return { tag: 'drop' };
    const payload = JSON.parse(message.data);
    if (payload === null || typeof payload !== 'object' || Array.isArray(payload)) {
      return { tag: 'keep', val: message.data };
    }
    payload.seen_by = 'seen_by';
    return { tag: 'keep', val: JSON.stringify(payload) };
  },
};
