/**
 * Seed 002's key/value endpoint, which speaks the Consul KV API:
 * `GET <url>/v1/kv/<prefix>?recurse` with `Authorization: Bearer <token>`, answering a JSON
 * array of {Key, Value (base64 or null), ModifyIndex, …}; 404 means "nothing under the prefix"
 * (a successful, empty read). Polls every intervalMs, or with `watch` uses Consul blocking
 * queries (`&index=<X-Consul-Index>&wait=<n>s`), following Consul's documented rules: reset the
 * index when it goes backwards or is not positive, and rate-limit so a misbehaving server cannot
 * make us spin. The token never appears in logs or errors.
 */
import { request as undiciRequest } from 'undici';
import type { Logger } from '../../log.js';
import { PilotError } from '../../errors.js';
import type { KvSourceSettings } from './kind.js';
import { MAX_TIMER_MS } from '../../config/parse.js';
import type { Layout } from '../../state/layout.js';
import { kvLayout } from '../../state/kv-layout.js';
import type { Snapshot, Source, SourceSink } from '../source.js';
import { backoffMs, buildSnapshot, redact, safeCause, sameKeys, systemClock, type SourceClock } from '../common.js';

export type KvRequest = typeof undiciRequest;

export interface KvSourceDeps {
  log: Logger;
  request?: KvRequest;
  clock?: SourceClock;
  /** Snapshot source name (default `kv`). */
  name?: string;
  /** Default: seed 002 (kvLayout over settings.prefix). */
  layout?: Layout;
  /** Blocking query `wait` in seconds (default 300, Consul's maximum is 600). */
  waitSeconds?: number;
  /** Minimum time between two blocking queries that brought nothing new (default 1 s). */
  minWatchGapMs?: number;
  /** Largest body accepted (default 16 MiB). */
  maxBodyBytes?: number;
}

interface ReadResult {
  keys: Record<string, string>;
  /** X-Consul-Index, when the answer carried a usable one. */
  index?: number;
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/** Consul KV JSON → absolute '/'-keys and decoded values; folder entries (Value null) are left out. */
export function decodeConsulKv(body: unknown): Record<string, string> {
  if (!Array.isArray(body)) throw new Error('not a JSON array');
  const keys: Record<string, string> = {};
  body.forEach((entry: unknown, i) => {
    if (typeof entry !== 'object' || entry === null) throw new Error(`entry ${i} is not an object`);
    const { Key, Value } = entry as { Key?: unknown; Value?: unknown };
    if (typeof Key !== 'string' || Key === '') throw new Error(`entry ${i} has no string Key`);
    if (Value === null || Value === undefined) return;
    if (typeof Value !== 'string' || !BASE64.test(Value)) throw new Error(`entry ${i} (${JSON.stringify(Key.slice(0, 80))}) has a Value that is not base64`);
    keys[`/${Key.replace(/^\/+/, '')}`] = Buffer.from(Value, 'base64').toString('utf8');
  });
  return keys;
}

/** The endpoint's URL as shown in messages: without user:password. */
function shownUrl(url: URL): string {
  const u = new URL(url.href);
  u.username = '';
  u.password = '';
  return u.href;
}

export function createKvSource(settings: KvSourceSettings, deps: KvSourceDeps): Source {
  const name = deps.name ?? 'kv';
  const request = deps.request ?? undiciRequest;
  const clock = deps.clock ?? systemClock;
  const log = deps.log.child({ component: `source-${name}` });
  const layout = deps.layout ?? ((keys) => kvLayout(keys, { prefix: settings.prefix, source: name }));
  const waitSeconds = deps.waitSeconds ?? 300;
  const minGapMs = deps.minWatchGapMs ?? 1000;
  const maxBody = deps.maxBodyBytes ?? 16 * 1024 * 1024;
  const secrets = [settings.token];
  const base = settings.url.replace(/\/+$/, '');
  // URL credentials (http://user:pass@host) travel as basic auth and are never shown.
  const parsed = new URL(base);
  const basicAuth =
    parsed.username === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(parsed.username)}:${decodeURIComponent(parsed.password)}`).toString('base64')}`;
  if (parsed.password !== '') secrets.push(decodeURIComponent(parsed.password), parsed.password);
  const path = `/v1/kv/${settings.prefix.replace(/^\/+/, '').split('/').map(encodeURIComponent).join('/')}`;

  let controller: AbortController | undefined;
  let loop: Promise<void> | undefined;

  /**
   * One read, bounded as a whole (headers and body): KV_TIMEOUT, or for a blocking query its
   * wait (plus Consul's jitter) and KV_TIMEOUT. undici's own timeouts only bound the gaps between
   * chunks, so a store that drips its answer would otherwise stall the source silently.
   */
  async function read(index: number, signal: AbortSignal): Promise<ReadResult> {
    // Consul may hold a blocking query for wait + wait/16 (its jitter): allow that plus the timeout.
    // Capped at what a timer holds: a longer delay would fire after 1 ms.
    const limitMs = Math.min(MAX_TIMER_MS, index > 0 ? waitSeconds * 1000 + Math.ceil((waitSeconds * 1000) / 16) + settings.timeoutMs : settings.timeoutMs);
    const bounded = new AbortController();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      bounded.abort();
    }, limitMs);
    const stop = (): void => bounded.abort();
    signal.addEventListener('abort', stop, { once: true });
    try {
      return await readBounded(index, bounded.signal, limitMs, () => timedOut);
    } finally {
      clearTimeout(timer);
      signal.removeEventListener('abort', stop);
    }
  }

  async function readBounded(index: number, signal: AbortSignal, limitMs: number, timedOut: () => boolean): Promise<ReadResult> {
    const url = new URL(`${base}${path}`);
    url.search = index > 0 ? `recurse&index=${index}&wait=${waitSeconds}s` : 'recurse';
    const shown = `${name}: GET ${shownUrl(url)}`;
    const fail = (what: string, cause?: unknown): PilotError =>
      new PilotError('E_SOURCE', redact(`${shown} ${what}`, secrets), {
        ...(cause === undefined ? {} : { cause: safeCause(cause, secrets) }),
        details: { source: name },
      });
    const headers: Record<string, string> = { accept: 'application/json' };
    if (settings.token !== undefined && settings.token !== '') headers.authorization = `Bearer ${settings.token}`;
    const headersTimeout = limitMs;
    if (basicAuth !== undefined && headers.authorization === undefined) headers.authorization = basicAuth;
    const target = shownUrl(url);
    let res;
    try {
      res = await request(target, { method: 'GET', headers, headersTimeout, bodyTimeout: settings.timeoutMs, signal });
    } catch (err) {
      const code = (err as { code?: string }).code ?? '';
      if (timedOut()) throw fail(`timed out after ${limitMs} ms`, err);
      if (/TIMEOUT/.test(code)) throw fail(`timed out (${code})`, err);
      throw fail(`failed: ${(err as Error).message}`, err);
    }
    const headerIndex = Number(res.headers['x-consul-index']);
    const indexPart = Number.isSafeInteger(headerIndex) ? { index: headerIndex } : {};
    if (res.statusCode === 404) {
      await res.body.dump().catch(() => undefined);
      return { keys: {}, ...indexPart };
    }
    if (res.statusCode !== 200) {
      await res.body.dump().catch(() => undefined);
      throw fail(`answered ${res.statusCode}`);
    }
    let text = '';
    try {
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxBody) {
          res.body.destroy();
          throw new Error(`body larger than ${maxBody} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (timedOut()) throw fail(`timed out after ${limitMs} ms`, err);
      throw fail(`answered 200 but the body could not be read: ${(err as Error).message}`, err);
    }
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (err) {
      throw fail(`answered 200 with a body that is not JSON (${(err as Error).message})`, err);
    }
    try {
      return { keys: decodeConsulKv(body), ...indexPart };
    } catch (err) {
      throw fail(`answered 200 with an unexpected shape: ${(err as Error).message}`, err);
    }
  }

  async function run(sink: SourceSink, signal: AbortSignal): Promise<void> {
    let index = 0;
    let last: Record<string, string> | undefined;
    let failing = false;
    let failures = 0;
    let warnedNoIndex = false;
    while (!signal.aborted) {
      const started = clock.now();
      let result: ReadResult;
      try {
        result = await read(settings.watch ? index : 0, signal);
      } catch (err) {
        if (signal.aborted) return;
        failing = true;
        // A fresh, non-blocking read after an error: a blocking one could hide the recovery
        // (and keep us "stale") for the whole wait.
        index = 0;
        sink.error(err instanceof Error ? err : new Error(String(err)));
        await clock.sleep(settings.watch ? backoffMs(failures++, 500, settings.intervalMs, clock.random) : settings.intervalMs, signal);
        continue;
      }
      if (signal.aborted) return;
      failures = 0;
      const changed = !sameKeys(last, result.keys);
      if (changed || failing) {
        const snapshot: Snapshot = buildSnapshot(name, clock.now(), result.keys, layout, log);
        if (changed) log.debug({ keys: Object.keys(result.keys).length }, `${name}: read ${Object.keys(result.keys).length} keys`);
        last = result.keys;
        failing = false;
        sink.snapshot(snapshot);
      }
      if (!settings.watch) {
        await clock.sleep(settings.intervalMs, signal);
        continue;
      }
      const next = result.index;
      if (next === undefined || next < 1) {
        // Consul's rules: a missing or non-positive index cannot be blocked on; poll instead.
        if (!warnedNoIndex) log.warn(`${name}: the endpoint sent no usable X-Consul-Index; polling every ${settings.intervalMs} ms`);
        warnedNoIndex = true;
        index = 0;
        await clock.sleep(settings.intervalMs, signal);
        continue;
      }
      // An index that goes backwards (store restored or restarted): start over from 0.
      const previous = index;
      index = next < previous ? 0 : next;
      if (next < previous) log.info({ previous, next }, `${name}: X-Consul-Index went backwards; resetting`);
      const elapsed = clock.now() - started;
      if (!changed && next === previous && elapsed < minGapMs) await clock.sleep(minGapMs - elapsed, signal);
    }
  }

  return {
    name,
    start(sink: SourceSink): void {
      if (loop !== undefined) throw new PilotError('E_INTERNAL', `${name}: source started twice`);
      controller = new AbortController();
      log.info({ url: shownUrl(new URL(`${base}${path}`)), watch: settings.watch, intervalMs: settings.intervalMs }, `${name}: watching ${settings.prefix}`);
      loop = run(sink, controller.signal).catch((err: unknown) => {
        sink.error(new PilotError('E_INTERNAL', redact(`${name}: source loop failed: ${String(err)}`, secrets), { cause: safeCause(err, secrets) }));
      });
    },
    async stop(): Promise<void> {
      controller?.abort();
      await loop;
    },
  };
}
