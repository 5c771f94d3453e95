// profanity-filter: a JavaScript transform. Masks listed words in the string
// values of a JSON payload ("darn" -> "d***"), case-insensitive, whole words
// only, and drops the message when `drop_above` or more words were masked.
//
// config = { words = ["darn", "heck"], mask = "*", drop_above = 0 }
//   words:      the words to mask (required, at least one)
//   mask:       the character that replaces all but the first letter ("*")
//   drop_above: drop a message with this many masked words or more (0: never)
//
// Built by `cargo xtask build-plugins` with componentize-js's default command:
//   componentize-js --wit wit --world-name transform -o profanity_filter.wasm profanity.js
import { config, log } from 'ferrygate:plugin/host@0.2.0';

let settings = null;

function readConfig() {
  const raw = JSON.parse(config());
  const words = raw.words;
  if (!Array.isArray(words) || words.length === 0 || !words.every((w) => typeof w === 'string' && /^\w+$/.test(w))) {
    throw 'config.words must be a non-empty list of words (letters, digits, _)';
  }
  const mask = raw.mask ?? '*';
  if (typeof mask !== 'string' || [...mask].length !== 1) {
    throw 'config.mask must be one character';
  }
  const dropAbove = raw.drop_above ?? 0;
  if (!Number.isInteger(dropAbove) || dropAbove < 0) {
    throw 'config.drop_above must be a whole number, 0 or more';
  }
  const pattern = new RegExp(`\\b(${words.join('|')})\\b`, 'gi');
  return { pattern, mask, dropAbove };
}

function clean(value, counter) {
  if (typeof value === 'string') {
    return value.replace(settings.pattern, (word) => {
      counter.masked += 1;
      return word[0] + settings.mask.repeat(word.length - 1);
    });
  }
  if (Array.isArray(value)) {
    return value.map((item) => clean(item, counter));
  }
  if (value !== null && typeof value === 'object') {
    const out = {};
    for (const [key, item] of Object.entries(value)) {
      out[key] = clean(item, counter);
    }
    return out;
  }
  return value;
}

export const lifecycle = {
  init() {
    // A thrown string is the `err` of `result<_, string>`.
    settings = readConfig();
    log('info', `masking ${settings.pattern.source.split('|').length} words`);
  },
};

export const transformer = {
  transform(message) {
    const counter = { masked: 0 };
    const cleaned = clean(JSON.parse(message.data), counter);
    if (settings.dropAbove > 0 && counter.masked >= settings.dropAbove) {
      log('info', `dropped a message on ${message.channel}: ${counter.masked} masked words`);
      return { tag: 'drop' };
    }
    return counter.masked === 0 ? { tag: 'keep', val: message.data } : { tag: 'keep', val: JSON.stringify(cleaned) };
  },
};
