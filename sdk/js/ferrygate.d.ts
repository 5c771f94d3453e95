// Types of ferrygate.js, for TypeScript editors and `tsc --checkJs`.
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type Outcome = { tag: 'keep'; val: string } | { tag: 'drop' };
export type Decision =
  | { tag: 'allow' }
  | { tag: 'deny'; val: string }
  | { tag: 'rewrite'; val: string }
  | { tag: 'fan-out'; val: string[] }
  | { tag: 'drop' };
export interface Identity { user?: string; claims: string }
export interface Connection { id: string; identity: Identity }
export interface Message {
  direction: 'inbound' | 'outbound';
  channel: string;
  connection?: Connection;
  data: string;
}
export function config(): { [key: string]: Json };
export const log: Record<'debug' | 'info' | 'warn' | 'error', (message: unknown) => void>;
export function parse(text: string): Json;
export function keep(value: Json): Outcome;
export function keepText(text: string): Outcome;
export function drop(): Outcome;
export function allow(): Decision;
export function deny(reason: string): Decision;
export function rewrite(channel: string): Decision;
export function fanOut(channels: string[]): Decision;
export type Verdict =
  | { tag: 'allow'; val: { identity: Identity; expiresAtUnixMs?: bigint } }
  | { tag: 'deny'; val: { status: number; reason: string } };
export function admit(
  user: string | undefined,
  claims?: { [key: string]: Json },
  expiresAtUnixMs?: number,
): Verdict;
export function refuse(status: number, reason: string): Verdict;
