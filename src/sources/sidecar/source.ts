/**
 * The `sidecar` source (seed 000): haproxy-api's ways of learning Sidecar's state, made safe.
 *
 *  - Bootstrap: GET the state URL (5 s for the whole request) at start; on failure log, report
 *    through sink.error and retry with backoff until a state arrives by either path.
 *  - Pushes: `POST /update` (haproxy-api's route), `/sidecar/update` (Sidecar's label and static
 *    listeners) and `/api/update` (the URL in Sidecar's README) with a StateChangedEvent body.
 *    Answered at once (Sidecar gives up after 3 s); the snapshot follows asynchronously. A state is
 *    kept only when its LastChanged is strictly newer than the held one (haproxy-api's rule).
 *  - Lost events: Sidecar retries a failed POST with an EMPTY body (its retry re-sends a drained
 *    buffer, shared reference A2) and drops events when its 20-slot queue is full. An empty or
 *    unusable body therefore answers 400 and triggers a re-read of the state URL.
 *  - Reads from the state URL describe Sidecar's state *now*: they replace the held state even when
 *    their LastChanged is older (a restarted Sidecar, a host with a late clock), unless a push was
 *    accepted while the read was in flight (then the newer-wins rule applies, so a slow read never
 *    undoes a newer push). A push older than the held state is ignored and answered with a re-read
 *    (cheap, coalesced), which is how a Sidecar whose LastChanged went backwards is caught up.
 *  - Follower mode (`-F host:port`): hold `GET /api/watch` open; every JSON document in it means
 *    "changed", answered by a read of `/api/state.json`. Reconnect after 3 minutes without a
 *    document (haproxy-api's refresh) and 5 s after an error or the end of the stream.
 *  - A state LastChanged more than a day ahead of this host's clock is refused: held, it would
 *    make every later state look older.
 *
 * Reads are coalesced: at most one in flight, and at most one more queued behind it.
 */
import { timingSafeEqual, createHash } from 'node:crypto';
import { request as undiciRequest } from 'undici';
import type { Logger } from '../../log.js';
import { PilotError } from '../../errors.js';
import type { Skipped } from '../../state/layout.js';
import type { SourceSink } from '../source.js';
import { backoffMs, redact, safeCause, systemClock, type SourceClock } from '../common.js';
import type { PushRequest, PushResponse, PushSource, SourceRoute } from './push.js';
import type { SidecarSettings } from './settings.js';
import { decodeServicesState, decodeStateChangedEvent, parseJsonBody, SidecarStateError, type DecodedState, type ServicesState, type SidecarService } from './state.js';
import { sidecarLayout, type SidecarBackend } from './layout.js';
import { jsonDocumentCounter } from './json-stream.js';

export type SidecarRequest = typeof undiciRequest;

export interface SidecarSourceDeps {
  log: Logger;
  clock?: SourceClock;
  request?: SidecarRequest;
  /** Snapshot source name (default `sidecar`). */
  name?: string;
  /** Largest push body (default 8 MiB; the listener answers 413 above it). */
  maxPushBytes?: number;
  /** Largest state.json read (default 64 MiB). */
  maxReadBytes?: number;
  /** Whole-request timeout of a state read (default 5 s, as haproxy-api's FetchState). */
  readTimeoutMs?: number;
  /** Follower: reconnect the watch after this long without a document (default 3 min). */
  watchIdleMs?: number;
  /** Follower: wait this long after a watch error (default 5 s). */
  watchRetryMs?: number;
  /** Read retry backoff (default 500 ms doubling up to 30 s, jittered). */
  retryBaseMs?: number;
  retryMaxMs?: number;
}

export interface SidecarHealth {
  /** The held state's LastChanged, as Sidecar wrote it (haproxy-api's /health field). */
  last_changed: string | null;
  /** The Service of the last accepted push's ChangeEvent. */
  last_service_changed: SidecarService | null;
}

export interface SidecarSource extends PushSource {
  /** haproxy-api's /health fields; the pilot's /health adds them next to its own. */
  health(): SidecarHealth & Record<string, unknown>;
}

const FUTURE_LIMIT_NS = 24n * 3600n * 1_000_000_000n;
const NO_STATE = { status: 500, body: { errors: ['No currently stored state'] } } as const;

type Outcome = 'accepted' | 'duplicate' | 'older' | 'future';

function shownUrl(text: string): string {
  const u = new URL(text);
  u.username = '';
  u.password = '';
  return u.href;
}

export function createSidecarSource(settings: SidecarSettings, deps: SidecarSourceDeps): SidecarSource {
  const name = deps.name ?? 'sidecar';
  const log = deps.log.child({ component: `source-${name}` });
  const clock = deps.clock ?? systemClock;
  const request = deps.request ?? undiciRequest;
  const maxPush = deps.maxPushBytes ?? 8 * 1024 * 1024;
  const maxRead = deps.maxReadBytes ?? 64 * 1024 * 1024;
  const readTimeoutMs = deps.readTimeoutMs ?? 5000;
  const watchIdleMs = deps.watchIdleMs ?? 3 * 60_000;
  const watchRetryMs = deps.watchRetryMs ?? 5000;
  const retryBase = deps.retryBaseMs ?? 500;
  const retryMax = deps.retryMaxMs ?? 30_000;
  const parsedUrl = new URL(settings.stateUrl);
  const secrets = [settings.pushToken, parsedUrl.password === '' ? undefined : decodeURIComponent(parsedUrl.password), parsedUrl.password || undefined];
  const stateUrl = shownUrl(settings.stateUrl);
  const tokenDigest = settings.pushToken === undefined ? undefined : createHash('sha256').update(settings.pushToken).digest();
  const basicAuth =
    parsedUrl.username === '' ? undefined : `Basic ${Buffer.from(`${decodeURIComponent(parsedUrl.username)}:${decodeURIComponent(parsedUrl.password)}`).toString('base64')}`;

  let sink: SourceSink | undefined;
  let controller: AbortController | undefined;
  const loops: Promise<void>[] = [];
  let stopped = false;

  let held: DecodedState | undefined;
  let version = 0; // bumped on every accepted state
  let lastService: SidecarService | null = null;
  let lastBackends: SidecarBackend[] = [];
  let loggedSkips = new Set<string>();
  let failing = false;
  let emitQueued = false;

  let readWanted = false;
  let wakeReader: (() => void) | undefined;

  function fail(err: unknown): void {
    failing = true;
    const e = err instanceof Error ? err : new Error(String(err));
    sink?.error(e);
  }

  function emitSoon(): void {
    if (emitQueued || sink === undefined || stopped) return;
    emitQueued = true;
    // After the push is answered: a snapshot can take the pipeline a while, Sidecar cannot wait.
    setImmediate(() => {
      emitQueued = false;
      if (held === undefined || sink === undefined || stopped) return;
      const result = sidecarLayout(held.state, {
        source: name,
        ...(settings.bindIp === undefined ? {} : { bindIp: settings.bindIp }),
        useHostnames: settings.useHostnames,
        previous: lastBackends,
      });
      logSkipped([...held.skipped, ...result.skipped]);
      lastBackends = result.backends;
      failing = false;
      sink.snapshot({ source: name, at: clock.now(), keys: {}, backends: result.backends });
    });
  }

  /** Each skipped record is logged once while it stays wrong, not on every push. */
  function logSkipped(skipped: readonly Skipped[]): void {
    const now = new Set<string>();
    for (const s of skipped) {
      const id = `${s.key}\0${s.reason}`;
      now.add(id);
      if (!loggedSkips.has(id)) log.warn({ key: s.key }, `${name}: skipped ${s.reason}`);
    }
    loggedSkips = now;
  }

  function accept(decoded: DecodedState, origin: 'push' | 'read', readStartVersion = -1): Outcome {
    if (decoded.lastChangedNs - BigInt(clock.now()) * 1_000_000n > FUTURE_LIMIT_NS) {
      log.warn({ last_changed: decoded.state.LastChanged, origin }, `${name}: refused a state whose LastChanged is more than a day ahead of this host's clock`);
      return 'future';
    }
    if (held !== undefined) {
      const readAlone = origin === 'read' && version === readStartVersion;
      if (decoded.lastChangedNs === held.lastChangedNs) return 'duplicate';
      if (decoded.lastChangedNs < held.lastChangedNs) {
        if (!readAlone) return 'older';
        log.info({ held: held.state.LastChanged, read: decoded.state.LastChanged }, `${name}: ${stateUrl} has an older LastChanged than the state held (Sidecar restarted, or a clock went back); taking it`);
      }
    }
    held = decoded;
    version++;
    emitSoon();
    return 'accepted';
  }

  function requestRead(why: string): void {
    if (stopped) return;
    log.debug({ why }, `${name}: reading ${stateUrl}`);
    readWanted = true;
    wakeReader?.();
  }

  async function readState(signal: AbortSignal): Promise<DecodedState> {
    const timeout = AbortSignal.timeout(readTimeoutMs);
    const both = AbortSignal.any([signal, timeout]);
    const shown = `${name}: GET ${stateUrl}`;
    const error = (what: string, cause?: unknown): PilotError =>
      new PilotError('E_SOURCE', redact(`${shown} ${what}`, secrets), { ...(cause === undefined ? {} : { cause: safeCause(cause, secrets) }), details: { source: name } });
    const headers: Record<string, string> = { accept: 'application/json' };
    if (basicAuth !== undefined) headers.authorization = basicAuth;
    let text: string;
    try {
      const res = await request(stateUrl, { method: 'GET', headers, signal: both });
      if (res.statusCode !== 200) {
        await res.body.dump().catch(() => undefined);
        throw error(`answered ${res.statusCode}`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxRead) {
          res.body.destroy();
          throw error(`answered more than ${maxRead} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      text = Buffer.concat(chunks).toString('utf8');
    } catch (err) {
      if (err instanceof PilotError) throw err;
      if (timeout.aborted && !signal.aborted) throw error(`timed out after ${readTimeoutMs} ms`, err);
      throw error(`failed: ${(err as Error).message}`, err);
    }
    try {
      return decodeServicesState(parseJsonBody(text), 'state.json');
    } catch (err) {
      throw error(`answered 200 with an unusable state: ${(err as Error).message}`, err);
    }
  }

  async function readLoop(signal: AbortSignal): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      if (!readWanted) {
        await new Promise<void>((resolve) => {
          const done = (): void => {
            signal.removeEventListener('abort', done);
            wakeReader = undefined;
            resolve();
          };
          wakeReader = done;
          signal.addEventListener('abort', done, { once: true });
        });
        continue;
      }
      readWanted = false;
      const startVersion = version;
      let decoded: DecodedState;
      try {
        decoded = await readState(signal);
      } catch (err) {
        if (signal.aborted) return;
        const level = failures === 0 ? 'warn' : 'debug';
        log[level]({ err: (err as Error).message }, `${name}: could not read the state; retrying`);
        fail(err);
        await clock.sleep(backoffMs(failures++, retryBase, retryMax, clock.random), signal);
        // Satisfied meanwhile by an accepted push (a later, whole state)? Then no retry is needed.
        if (version === startVersion) readWanted = true;
        continue;
      }
      if (failures > 0) log.info(`${name}: ${stateUrl} answers again`);
      failures = 0;
      const outcome = accept(decoded, 'read', startVersion);
      if (outcome !== 'accepted') log.debug({ outcome, last_changed: decoded.state.LastChanged }, `${name}: read ${stateUrl}: nothing newer`);
      // A read that brought nothing new still ends a failure: tell the pipeline the source is fine.
      if (outcome !== 'accepted' && failing && held !== undefined) emitSoon();
    }
  }

  async function followLoop(signal: AbortSignal): Promise<void> {
    const f = settings.follow!;
    const watchUrl = `http://${f.host.includes(':') ? `[${f.host}]` : f.host}:${f.port}/api/watch`;
    let failures = 0;
    let connected = false;
    while (!signal.aborted) {
      const conn = new AbortController();
      const both = AbortSignal.any([signal, conn.signal]);
      let idle: NodeJS.Timeout | undefined;
      const resetIdle = (): void => {
        clearTimeout(idle);
        idle = setTimeout(() => conn.abort(), watchIdleMs);
      };
      try {
        resetIdle();
        const res = await request(watchUrl, { method: 'GET', headers: { accept: 'application/json' }, signal: both, headersTimeout: readTimeoutMs, bodyTimeout: 0 });
        if (res.statusCode !== 200) {
          await res.body.dump().catch(() => undefined);
          throw new Error(`answered ${res.statusCode}`);
        }
        // Info when the stream starts or comes back; the 3-minute refreshes are routine.
        log[connected && failures === 0 ? 'debug' : 'info']({ url: watchUrl }, `${name}: following ${watchUrl}`);
        connected = true;
        failures = 0;
        const counter = jsonDocumentCounter();
        for await (const chunk of res.body) {
          if (counter.feed(chunk as Buffer) > 0) {
            resetIdle();
            requestRead('watch event');
          }
        }
        throw new Error('the stream ended');
      } catch (err) {
        clearTimeout(idle);
        if (signal.aborted) return;
        if (conn.signal.aborted) {
          log.debug(`${name}: no watch event for ${watchIdleMs} ms; reconnecting`);
          continue;
        }
        const e = new PilotError('E_SOURCE', `${name}: GET ${watchUrl} ${(err as Error).message}`, { cause: safeCause(err, secrets), details: { source: name } });
        log[failures++ === 0 ? 'warn' : 'debug']({ err: e.message }, `${name}: the watch stream failed; reconnecting in ${watchRetryMs} ms`);
        fail(e);
        await clock.sleep(watchRetryMs, signal);
      }
    }
  }

  function tokenOk(req: PushRequest): boolean {
    if (tokenDigest === undefined) return true;
    const given = req.query.get('token');
    if (given === null) return false;
    // Equal-length digests: timingSafeEqual needs equal lengths and must not leak the token's.
    return timingSafeEqual(createHash('sha256').update(given).digest(), tokenDigest);
  }

  const unauthorized: PushResponse = { status: 401, body: { errors: ['a valid token query parameter is required'] } };

  function handlePush(req: PushRequest): PushResponse {
    if (!tokenOk(req)) {
      log.warn({ remote: req.remoteAddress, path: req.path }, `${name}: refused a push without a valid token`);
      return unauthorized;
    }
    if (stopped) return { status: 503, body: { errors: ['stopping'] } };
    let event;
    try {
      event = decodeStateChangedEvent(parseJsonBody(req.body.toString('utf8')));
    } catch (err) {
      if (!(err instanceof SidecarStateError)) throw err;
      // Sidecar's retries arrive empty: routine after any failed attempt, so info, not warn.
      const empty = req.body.length === 0;
      log[empty ? 'info' : 'warn']({ remote: req.remoteAddress }, `${name}: push not usable (${err.message}); re-reading ${stateUrl}`);
      requestRead('unusable push');
      return { status: 400, body: { errors: [`${err.message}; the state is re-read from Sidecar`] } };
    }
    const outcome = accept(event, 'push');
    if (outcome === 'future') return { status: 400, body: { errors: ['State.LastChanged is more than a day ahead of this host\'s clock'] } };
    if (outcome === 'accepted') {
      lastService = event.changedService;
      log.debug({ remote: req.remoteAddress, last_changed: event.state.LastChanged }, `${name}: push accepted`);
    } else {
      log.debug({ remote: req.remoteAddress, outcome, last_changed: event.state.LastChanged, held: held?.state.LastChanged }, `${name}: push ignored (not newer than the state held)`);
      // Older than what we hold: reordering, or a Sidecar whose LastChanged went back. A read tells.
      if (outcome === 'older') requestRead('older push');
    }
    return { status: 200 };
  }

  const pushRoute = (path: string): SourceRoute => ({ method: 'POST', path, maxBodyBytes: maxPush, handle: handlePush });
  const routes: SourceRoute[] = [
    pushRoute('/update'),
    pushRoute('/sidecar/update'),
    pushRoute('/api/update'),
    {
      method: 'GET',
      path: '/state',
      handle: (req) => {
        if (!tokenOk(req)) return unauthorized;
        return held === undefined ? NO_STATE : { status: 200, body: held.state satisfies ServicesState };
      },
    },
  ];

  return {
    name,
    listener: { host: settings.listen.host, port: settings.listen.port, routes },
    health: () => ({ last_changed: held?.state.LastChanged ?? null, last_service_changed: lastService }),
    start(s: SourceSink): void {
      if (sink !== undefined) throw new PilotError('E_INTERNAL', `${name}: source started twice`);
      sink = s;
      controller = new AbortController();
      const where = `http://${settings.listen.host}:${settings.listen.port}`;
      log.info(
        { state_url: stateUrl, listen: where, follow: settings.follow === undefined ? undefined : `${settings.follow.host}:${settings.follow.port}` },
        settings.follow === undefined ? `${name}: reading ${stateUrl}, then taking pushes on ${where}/update` : `${name}: following ${settings.follow.host}:${settings.follow.port}, and taking pushes on ${where}/update`,
      );
      for (const note of settings.notes) log.info(`${name}: ${note}`);
      if (tokenDigest === undefined) {
        log.warn(`${name}: the push endpoint ${where}/update is open: anyone who can reach it can replace the service list (set SIDECAR_PUSH_TOKEN_FILE and add ?token=… to Sidecar's listener URL)`);
      }
      if (held !== undefined) emitSoon(); // pushed before start
      loops.push(readLoop(controller.signal));
      if (settings.follow !== undefined) loops.push(followLoop(controller.signal));
      else if (held === undefined) requestRead('bootstrap');
      for (const l of loops) {
        l.catch((err: unknown) => sink?.error(new PilotError('E_INTERNAL', redact(`${name}: source loop failed: ${String(err)}`, secrets), { cause: safeCause(err, secrets) })));
      }
    },
    async stop(): Promise<void> {
      stopped = true;
      controller?.abort();
      await Promise.allSettled(loops);
    },
  };
}
