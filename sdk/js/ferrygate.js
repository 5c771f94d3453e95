// Helpers for ferrygate plugins written in JavaScript (componentize-js).
// They wrap the `ferrygate:plugin/host` import the way `ferrygate-sdk` does
// for Rust. Copy this file (and ferrygate.d.ts for TypeScript editors) next to
// your plugin's source and import it relatively: componentize-js loads the
// modules of the source's folder when it builds.
//
//   import { config, log, keep, drop, parse } from './ferrygate.js';
import { config as rawConfig, log as hostLog } from 'ferrygate:plugin/host@0.2.0';

let parsed = null;

/** The plugin's `config` table as an object, parsed once per instance. */
export function config() {
  if (parsed === null) {
    const value = JSON.parse(rawConfig());
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw 'the config is not a table';
    }
    parsed = value;
  }
  return parsed;
}

/** One line in the gateway's log, tagged with the plugin's name and version. */
export const log = {
  debug: (message) => hostLog('debug', String(message)),
  info: (message) => hostLog('info', String(message)),
  warn: (message) => hostLog('warn', String(message)),
  error: (message) => hostLog('error', String(message)),
};

/** A payload (JSON text) as a value. */
export const parse = (text) => JSON.parse(text);

/** A transform outcome that sends `value` (any JSON value) on. */
export const keep = (value) => ({ tag: 'keep', val: JSON.stringify(value) });

/** A transform outcome that sends the payload text unchanged. */
export const keepText = (text) => ({ tag: 'keep', val: text });

/** A transform outcome that delivers nothing (the publisher is still acknowledged). */
export const drop = () => ({ tag: 'drop' });

/** Route decisions. */
export const allow = () => ({ tag: 'allow' });
export const deny = (reason) => ({ tag: 'deny', val: reason });
export const rewrite = (channel) => ({ tag: 'rewrite', val: channel });
export const fanOut = (channels) => ({ tag: 'fan-out', val: channels });

/**
 * Auth verdicts: admit `user` (undefined: a guest) with `claims`, until
 * `expiresAtUnixMs` (milliseconds since the Unix epoch; undefined: no
 * expiry), or refuse.
 */
export const admit = (user, claims = {}, expiresAtUnixMs = undefined) => ({
  tag: 'allow',
  val: {
    identity: { user, claims: JSON.stringify(claims) },
    expiresAtUnixMs: expiresAtUnixMs === undefined ? undefined : BigInt(expiresAtUnixMs),
  },
});
export const refuse = (status, reason) => ({ tag: 'deny', val: { status, reason } });
