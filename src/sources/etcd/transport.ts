/**
 * etcd v3 (seed 001: haproxy-confd's keys under /haproxy-<id>), through the etcd3 package:
 * one full read of the prefix, then a watch from the read's revision + 1. Snapshots are whole
 * (the key map after every change: the first at once, the rest of a burst debounced a little).
 *
 * Behaviour the etcd3 client does not give on its own, and why:
 *  - Resume without gaps. etcd3's Watcher sets its resume revision from the *header* of every
 *    response, including the creation answer, whose header is the store's current revision
 *    while older events may still be on their way; a stream that breaks in between would resume
 *    past them. We track the highest mod_revision actually applied and put it back into the
 *    watch request when the stream drops, so the reconnect asks for exactly what we have not seen.
 *  - Compaction. A watch resuming from a compacted revision is cancelled by etcd; we re-read
 *    everything and watch again from the new revision.
 *  - Expired auth tokens. The watch stream reconnects with the token it was created with; when
 *    etcd calls it invalid, a full read (whose unary call refreshes the token) and a new watch
 *    fix it.
 *  - Failover. etcd3 picks a random endpoint for each (re)connection and opens a circuit on
 *    failing ones; gRPC keepalives notice a member that vanished without closing its sockets.
 * The password never appears in logs or errors.
 */
import { readFileSync } from 'node:fs';
import { Etcd3, type IOptions, type IKeyValue, type IWatchResponse, type Watcher } from 'etcd3';
import type { Logger } from '../../log.js';
import { describeError, PilotError } from '../../errors.js';
import type { EtcdSourceSettings } from './kind.js';
import type { Layout } from '../../state/layout.js';
import { confdLayout } from '../../state/confd-layout.js';
import type { Source, SourceSink } from '../source.js';
import { backoffMs, buildSnapshot, redact, safeCause, systemClock, type SourceClock } from '../common.js';

export interface EtcdClientLike {
  getAll(): { prefix(p: string): { exec(): Promise<{ header: { revision: string }; kvs: IKeyValue[] }> } };
  watch(): { prefix(p: string): { startRevision(r: string): { watcher(): Watcher } } };
  close(): void;
}

export interface EtcdSourceDeps {
  log: Logger;
  clock?: SourceClock;
  name?: string;
  /** Default: seed 001 (confdLayout over settings.prefix). */
  layout?: Layout;
  /** A change after this long without a snapshot goes out at once; later ones wait for this much quiet (default 50 ms), at most maxDebounceMs (default 500 ms) after the first. */
  debounceMs?: number;
  maxDebounceMs?: number;
  /** Deadline for unary calls and for dialing (default 5 s). */
  callTimeoutMs?: number;
  /** Build the client (tests); default `new Etcd3(options)`. */
  createClient?: (options: IOptions) => EtcdClientLike;
}

/** `host:port` gets a scheme (https when TLS is configured); etcd3 wants one. */
export function etcdHosts(settings: EtcdSourceSettings): string[] {
  return settings.endpoints.map((e) => (/^https?:\/\//.test(e) ? e : `${settings.tls ? 'https' : 'http'}://${e}`));
}

/** The etcd3 options for the settings (files read here: a missing file is a config error). */
export function etcdOptions(settings: EtcdSourceSettings, callTimeoutMs: number, retryBackoff: { duration: number; next(): unknown }): IOptions {
  const options: IOptions = {
    hosts: etcdHosts(settings),
    dialTimeout: callTimeoutMs,
    // Unary calls get a deadline; the watch stream must not (it lives for hours).
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    grpcOptions: {
      // Notice a member that disappears without closing its sockets (partition, frozen VM).
      // etcd accepts pings every 5 s by default (--grpc-keepalive-min-time).
      'grpc.keepalive_time_ms': 10_000,
      'grpc.keepalive_timeout_ms': 5_000,
    },
    faultHandling: { watchBackoff: retryBackoff as never },
  };
  if (settings.user !== undefined) options.auth = { username: settings.user, password: settings.password ?? '' };
  if (settings.tls !== undefined) {
    const read = (what: string, file: string | undefined): Buffer | undefined => {
      if (file === undefined) return undefined;
      try {
        return readFileSync(file);
      } catch (err) {
        throw new PilotError('E_CONFIG', `etcd: TLS ${what} file ${file} cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`, { cause: err });
      }
    };
    const ca = read('ca', settings.tls.ca);
    const cert = read('cert', settings.tls.cert);
    const key = read('key', settings.tls.key);
    // gRPC takes null for "the system's roots".
    options.credentials = { rootCertificate: ca ?? (null as unknown as Buffer), ...(key ? { privateKey: key } : {}), ...(cert ? { certChain: cert } : {}) };
  }
  return options;
}

/** etcd3's watch reconnect backoff (its IBackoff shape): 200 ms doubling to 5 s, jittered. */
function watchBackoff(random: () => number, attempt = 0): { duration: number; next(): ReturnType<typeof watchBackoff> } {
  return { duration: backoffMs(attempt, 200, 5000, random), next: () => watchBackoff(random, attempt + 1) };
}

export function createEtcdSource(settings: EtcdSourceSettings, deps: EtcdSourceDeps): Source {
  const name = deps.name ?? 'etcd';
  const clock = deps.clock ?? systemClock;
  const log = deps.log.child({ component: `source-${name}` });
  const prefix = `/${settings.prefix.replace(/^\/+|\/+$/g, '')}/`;
  const layout = deps.layout ?? ((keys) => confdLayout(keys, { prefix: settings.prefix, source: name }));
  const debounceMs = deps.debounceMs ?? 50;
  const maxDebounceMs = deps.maxDebounceMs ?? 500;
  const callTimeoutMs = deps.callTimeoutMs ?? 5000;
  const secrets = [settings.password];
  const where = etcdHosts(settings).join(',');

  let sink: SourceSink | undefined;
  let client: EtcdClientLike | undefined;
  let watcher: Watcher | undefined;
  let keys: Record<string, string> = {};
  let applied = 0; // highest revision whose effects are in `keys`
  let stopped = false;
  let outage = false; // an error was reported and no snapshot has cleared it yet
  let flushTimer: NodeJS.Timeout | undefined;
  let firstPendingAt = 0;
  let lastFlushAt = Number.NEGATIVE_INFINITY;
  let leading = false;
  let syncing: Promise<void> | undefined;
  const stopController = new AbortController();

  const fail = (what: string, err: unknown): PilotError =>
    new PilotError('E_SOURCE', redact(`${name}: ${what} (${where} prefix ${prefix}): ${err instanceof Error ? err.message : String(err)}`, secrets), {
      cause: safeCause(err, secrets),
      details: { source: name },
    });

  const reportError = (error: PilotError): void => {
    outage = true;
    sink?.error(error);
  };

  function flush(): void {
    clearTimeout(flushTimer);
    flushTimer = undefined;
    leading = false;
    if (stopped || sink === undefined) return;
    outage = false;
    lastFlushAt = clock.now();
    sink.snapshot(buildSnapshot(name, lastFlushAt, { ...keys }, layout, log));
  }

  /**
   * The first change after a quiet spell goes out at once (one watch response holds a whole
   * transaction, so nothing of it is cut); changes that follow within debounceMs are coalesced
   * (at most maxDebounceMs after the first of them), so a burst of separate writes costs two
   * snapshots, not one per write.
   */
  function scheduleFlush(): void {
    const now = clock.now();
    // An immediate snapshot is queued: it will carry this change too.
    if (leading) return;
    if (flushTimer === undefined && now - lastFlushAt >= debounceMs) {
      // On the next turn, not inside the watch's event handler.
      leading = true;
      flushTimer = setTimeout(flush, 0);
      return;
    }
    if (flushTimer === undefined) firstPendingAt = now;
    clearTimeout(flushTimer);
    flushTimer = setTimeout(flush, Math.max(0, Math.min(debounceMs, maxDebounceMs - (now - firstPendingAt))));
  }

  function onData(res: IWatchResponse): void {
    if (res.events.length === 0) {
      // Progress notification: etcd sends it only to watchers that are in sync.
      applied = Math.max(applied, Number(res.header.revision));
      return;
    }
    for (const ev of res.events) {
      const key = ev.kv.key.toString('utf8');
      if (String(ev.type).toLowerCase() === 'delete') delete keys[key];
      else keys[key] = ev.kv.value.toString('utf8');
      applied = Math.max(applied, Number(ev.kv.mod_revision));
    }
    scheduleFlush();
  }

  function dropWatcher(): Watcher | undefined {
    const w = watcher;
    watcher = undefined;
    w?.removeAllListeners();
    // Keep an 'error' listener: an EventEmitter without one throws.
    w?.on('error', () => undefined);
    return w;
  }

  function startWatch(from: number): void {
    const w = client!.watch().prefix(prefix).startRevision(String(from)).watcher();
    watcher = w;
    let disconnected = false;
    w.on('data', onData);
    w.on('disconnected', (err: Error) => {
      if (w !== watcher) return;
      // Resume exactly after what we applied (see the header comment).
      w.request.start_revision = String(applied + 1);
      if (!disconnected) {
        disconnected = true;
        log.warn({ revision: applied }, redact(`${name}: watch disconnected (${err.message}); reconnecting`, secrets));
        reportError(fail('watch disconnected', err));
      }
      if (/auth token|authentication/i.test(err.message)) void resync('the auth token was refused', true);
    });
    w.on('connected', () => {
      if (w !== watcher || !disconnected) return;
      disconnected = false;
      log.info({ revision: applied + 1 }, `${name}: watch resumed from revision ${applied + 1}`);
      // The key map is still right (events since then will follow); announce it to clear "stale".
      if (outage) scheduleFlush();
    });
    w.on('error', (err: Error) => {
      if (w !== watcher) return;
      // etcd cancelled the watch: mostly compaction of the revision we resume from.
      // etcd3 has already dropped this watcher: cancelling it again would send etcd a cancel for
      // an id whose answer etcd3 cannot match (it throws on unknown watch ids).
      void resync(`the watch was cancelled (${err.message || 'compacted'})`, false);
    });
  }

  async function readAll(): Promise<void> {
    for (let attempt = 0; !stopped; attempt++) {
      try {
        const res = await client!.getAll().prefix(prefix).exec();
        if (stopped) return;
        const next: Record<string, string> = {};
        for (const kv of res.kvs) next[kv.key.toString('utf8')] = kv.value.toString('utf8');
        keys = next;
        applied = Number(res.header.revision);
        log.info({ keys: res.kvs.length, revision: applied }, `${name}: read ${res.kvs.length} keys under ${prefix} at revision ${applied}`);
        flush();
        startWatch(applied + 1);
        return;
      } catch (err) {
        if (stopped) return;
        reportError(fail('read failed', err));
        await clock.sleep(backoffMs(attempt, 500, 10_000, clock.random), stopController.signal);
      }
    }
  }

  function resync(why: string, cancelOld: boolean): Promise<void> {
    if (syncing !== undefined) return syncing;
    log.warn(`${name}: ${why}; reading everything again`);
    const old = dropWatcher();
    if (cancelOld) void old?.cancel().catch(() => undefined);
    syncing = readAll().finally(() => {
      syncing = undefined;
    });
    return syncing;
  }

  return {
    name,
    start(s: SourceSink): void {
      if (sink !== undefined) throw new PilotError('E_INTERNAL', `${name}: source started twice`);
      sink = s;
      const options = etcdOptions(settings, callTimeoutMs, watchBackoff(clock.random));
      try {
        client = deps.createClient ? deps.createClient(options) : (new Etcd3(options) as unknown as EtcdClientLike);
      } catch (err) {
        // grpc-js builds the TLS context here: a key that does not match its certificate, or a
        // file that is not a key, throws a bare OpenSSL error. It is the operator's files at fault.
        const tls = settings.tls;
        const files = tls ? `ETCD_CERT ${tls.cert ?? '(none)'} / ETCD_KEY ${tls.key ?? '(none)'} / ETCD_CA ${tls.ca ?? '(none)'}` : 'the client settings';
        throw new PilotError('E_CONFIG', `etcd: ${files} cannot be used: ${describeError(err)}`, { cause: err });
      }
      log.info({ endpoints: etcdHosts(settings), prefix, user: settings.user }, `${name}: watching ${prefix}`);
      syncing = readAll().finally(() => {
        syncing = undefined;
      });
    },
    async stop(): Promise<void> {
      stopped = true;
      stopController.abort();
      clearTimeout(flushTimer);
      const w = dropWatcher();
      // cancel() waits for etcd's answer; do not let a dead cluster hold up the shutdown.
      if (w) await Promise.race([w.cancel().catch(() => undefined), clock.sleep(1000)]);
      await syncing;
      client?.close();
    },
  };
}
