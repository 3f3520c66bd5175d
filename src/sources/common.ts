/**
 * Small pieces every source shares: an injectable clock, jittered backoff, secret redaction and
 * turning keys into a Snapshot through a layout (logging what the layout skipped).
 */
import type { Logger } from '../log.js';
import type { Layout, LayoutResult } from '../state/layout.js';
import type { Snapshot } from './source.js';

export interface SourceClock {
  now(): number;
  /** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /** 0 <= x < 1, for jitter. */
  random(): number;
}

export const systemClock: SourceClock = {
  now: () => Date.now(),
  random: () => Math.random(),
  sleep: (ms, signal) =>
    new Promise<void>((resolve) => {
      if (signal?.aborted) return resolve();
      const done = (): void => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      signal?.addEventListener('abort', done, { once: true });
    }),
};

/** Exponential backoff with ±20 % jitter so many pilots do not retry a store in lockstep. */
export function backoffMs(attempt: number, baseMs: number, maxMs: number, random: () => number): number {
  const raw = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 20));
  return Math.round(raw * (0.8 + 0.4 * random()));
}

/** Replaces every secret in `text` (tokens, passwords); secrets shorter than 3 characters are left (too likely to hit). */
export function redact(text: string, secrets: readonly (string | undefined)[]): string {
  let out = text;
  for (const s of secrets) if (s !== undefined && s.length >= 3) out = out.split(s).join('<redacted>');
  return out;
}

/** A cause safe to attach to a PilotError: message redacted, no request options or headers. */
export function safeCause(err: unknown, secrets: readonly (string | undefined)[]): Error {
  const message = redact(err instanceof Error ? err.message : String(err), secrets);
  const out = new Error(message);
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' || typeof code === 'number') Object.assign(out, { code });
  if (err instanceof Error) out.name = err.name;
  return out;
}

/** Runs the layout over the keys and logs each skipped key once per snapshot. */
export function buildSnapshot(source: string, at: number, keys: Record<string, string>, layout: Layout, log: Logger): Snapshot {
  return snapshotOf(source, at, keys, layout(keys), log);
}

/** A Snapshot from a layout's result, logging each skipped key once. */
export function snapshotOf(source: string, at: number, keys: Record<string, string>, result: LayoutResult, log: Logger): Snapshot {
  for (const s of result.skipped) log.warn({ key: s.key }, `${source}: skipped ${s.reason}`);
  const snapshot: Snapshot = { source, at, keys, backends: result.backends };
  if (result.files !== undefined && Object.keys(result.files).length > 0) snapshot.files = result.files;
  return snapshot;
}

/** Stable comparison of two key maps. */
export function sameKeys(a: Readonly<Record<string, string>> | undefined, b: Readonly<Record<string, string>>): boolean {
  if (a === undefined) return false;
  const ka = Object.keys(a);
  if (ka.length !== Object.keys(b).length) return false;
  return ka.every((k) => Object.prototype.hasOwnProperty.call(b, k) && a[k] === b[k]);
}
