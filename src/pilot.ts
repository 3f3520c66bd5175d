/**
 * The reconcile loop: one serial loop from "something changed" to "HAProxy runs it".
 *
 *   drain   take every request made so far (sources' snapshots, SIGHUP, POST /reload)
 *   merge   the latest snapshot of every source → desired state (state/merge.ts)
 *   build   settings + desired state → candidate: config, files, programs (candidate.ts)
 *   apply   the candidate as one transaction (apply/transaction.ts)
 *   commit  only after a successful apply: programs and re-read settings take effect
 *
 * A change the runtime API can express is applied at once; anything that needs a reload waits
 * for quiet first (a short minimum, a bounded maximum), so a burst of changes costs one reload.
 * Nothing builds or applies concurrently; a request made while a pass runs is coalesced into the
 * next pass, and every requester learns the result of a pass that started after it asked.
 */
import type { Logger } from './log.js';
import type { Snapshot, Source } from './sources/source.js';
import type { SourceStatus } from './state/model.js';
import { mergeSnapshots, type Excluded } from './state/merge.js';
import { internBackends } from './state/intern.js';
import type { Builder, Candidate } from './candidate.js';
import { describeError, PilotError } from './errors.js';

export interface PassResult {
  ok: boolean;
  kind: 'none' | 'runtime' | 'reload';
  error?: { code: string; message: string };
}

export interface PilotTransaction {
  /** What applying would take, without doing it: runtime-only plans skip the quiet wait. */
  plan?(candidate: Candidate): 'none' | 'runtime' | 'reload';
  apply(candidate: Candidate, reason: string, options: { force: boolean }): Promise<PassResult>;
}

/** The one clock the loop and the sources' bookkeeping use (tests drive it). */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export interface PilotOptions {
  log: Logger;
  sources: readonly Source[];
  /** The builder in force; with `reread`, a new one from re-read settings (not yet in force). */
  builder(reread: boolean): Builder | Promise<Builder>;
  transaction: PilotTransaction;
  /** After a successful apply: switch programs, and settings when the builder is a new one. */
  commit(builder: Builder, candidate: Candidate): void;
  quietMinMs: number;
  quietMaxMs: number;
  staleAfterMs: number;
  clock?: Clock;
}

interface Request {
  reasons: Set<string>;
  force: boolean;
  reread: boolean;
  firstAt: number;
  lastAt: number;
  waiters: ((result: PassResult) => void)[];
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export function createPilot(options: PilotOptions) {
  const { log } = options;
  const clock = options.clock ?? systemClock;
  const snapshots = new Map<string, Snapshot>();
  const sourceStatus = new Map<string, SourceStatus>();
  /** When each failing source's current streak of errors began (sources only re-send on change, so lastSuccessAt can be old). */
  const failingSince = new Map<string, number>();
  let pending: Request | undefined;
  let running: Promise<void> | undefined;
  let stopped = false;
  let passes = 0;
  /** The last pass's outcome, build failures included (a template error never reaches the applier). */
  let lastPass: (PassResult & { at: number; reason: string }) | undefined;
  let startedAt = clock.now();
  // Hardening (issue 13): stop() ends the quiet wait at once (a long PILOT_QUIET_MIN must not hold a stop).
  let wakeOnStop!: () => void;
  const stopRequested = new Promise<void>((resolve) => (wakeOnStop = resolve));

  for (const source of options.sources) sourceStatus.set(source.name, { name: source.name, ok: false, stale: false });

  /** Ask for a pass. `force`: reload HAProxy even when the render is unchanged (SIGHUP, POST /reload). */
  function request(reason: string, { force = false, reread = false } = {}): Promise<PassResult> {
    if (stopped) return Promise.resolve({ ok: false, kind: 'none', error: { code: 'E_INTERNAL', message: 'stopping' } });
    const now = clock.now();
    pending ??= { reasons: new Set(), force: false, reread: false, firstAt: now, lastAt: now, waiters: [] };
    pending.reasons.add(reason);
    pending.force ||= force;
    pending.reread ||= reread;
    pending.lastAt = now;
    const done = new Promise<PassResult>((resolve) => pending!.waiters.push(resolve));
    running ??= loop().finally(() => (running = undefined));
    return done;
  }

  async function loop(): Promise<void> {
    while (pending && !stopped) {
      // A change the runtime API can express goes at once; one that needs a reload waits until
      // no request arrived for quietMin, but never longer than quietMax after the first one, so
      // a source that changes constantly still gets applied.
      let built = await prebuild(pending);
      // SIGHUP and POST /reload are asked for by someone waiting: no quiet wait either (requests
      // made while the pass runs still coalesce into the next one).
      if (built?.plan !== 'none' && built?.plan !== 'runtime' && !pending.force) {
        const seen = pending.lastAt;
        for (;;) {
          const now = clock.now();
          const until = Math.min(pending.lastAt + options.quietMinMs, pending.firstAt + options.quietMaxMs);
          if (now >= until || stopped) break;
          await Promise.race([clock.sleep(until - now), stopRequested]);
        }
        if (pending.lastAt !== seen) built = undefined; // newer data arrived while waiting
      }
      if (stopped) break;
      const req = pending;
      pending = undefined;
      const result = await pass(req, built);
      lastPass = { ok: result.ok, kind: result.kind, ...(result.error ? { error: result.error } : {}), at: clock.now(), reason: [...req.reasons].join(', ') };
      for (const resolve of req.waiters) resolve(result);
    }
    // Requests that arrive after stop() never run; answer them.
    if (stopped && pending) {
      for (const resolve of pending.waiters) resolve({ ok: false, kind: 'none', error: { code: 'E_INTERNAL', message: 'stopping' } });
      pending = undefined;
    }
  }

  interface Built {
    builder: Builder;
    candidate: Candidate;
    plan: 'none' | 'runtime' | 'reload';
  }

  /** The candidate of a plain request (not SIGHUP), planned: runtime-only ones skip the wait. */
  async function prebuild(req: Request): Promise<Built | undefined> {
    const plan = options.transaction.plan;
    if (req.force || req.reread || !plan) return undefined;
    try {
      const builder = await options.builder(false);
      const candidate = await buildWith(builder);
      return { builder, candidate, plan: plan(candidate) };
    } catch {
      return undefined; // the pass builds again and reports the error
    }
  }

  function merge(builder: Builder) {
    const desired = mergeSnapshots(snapshots.values(), builder.reserved);
    reportExcluded(desired.excluded);
    return desired;
  }

  async function buildWith(builder: Builder): Promise<Candidate> {
    const candidate = await builder.build(merge(builder));
    // A warning (maxconn lowered to fit the open files limit, a lifted program's dropped keyword)
    // is logged once, when it first appears.
    for (const w of candidate.warnings) if (!warned.has(w)) log.warn(w);
    warned = new Set(candidate.warnings);
    return candidate;
  }
  let warned = new Set<string>();

  /** Each excluded entry is logged once, when it first appears (not on every pass). */
  let excludedBefore = new Set<string>();
  let excludedNow: Excluded[] = [];
  function reportExcluded(excluded: Excluded[]): void {
    const keys = new Set<string>();
    for (const e of excluded) {
      const key = `${e.source}\0${e.entry}\0${e.reason}`;
      keys.add(key);
      if (!excludedBefore.has(key)) log.warn({ source: e.source, entry: e.entry }, `source ${e.source}: ${e.entry} left out: ${e.reason}`);
    }
    excludedBefore = keys;
    excludedNow = excluded;
  }

  async function pass(req: Request, built: Built | undefined): Promise<PassResult> {
    passes += 1;
    const reason = [...req.reasons].join(', ');
    try {
      const builder = built?.builder ?? (await options.builder(req.reread));
      const candidate = built?.candidate ?? (await buildWith(builder));
      const result = await options.transaction.apply(candidate, reason, { force: req.force });
      if (result.ok) options.commit(builder, candidate);
      return result;
    } catch (err) {
      // A build failure (bad template, bad yaml on re-read) keeps HAProxy on its running config.
      const code = err instanceof PilotError ? err.code : 'E_INTERNAL';
      log.error({ err, reason, code }, `not applied: ${describeError(err)}`);
      return { ok: false, kind: 'none', error: { code, message: describeError(err) } };
    }
  }

  function onSnapshot(snapshot: Snapshot): void {
    const previous = sourceStatus.get(snapshot.source);
    if (previous && !previous.ok && previous.lastErrorAt !== undefined) {
      log.info({ source: snapshot.source }, `source ${snapshot.source} recovered`);
    }
    snapshots.set(snapshot.source, { ...snapshot, backends: internBackends(snapshot.backends, snapshots.get(snapshot.source)?.backends) });
    failingSince.delete(snapshot.source);
    sourceStatus.set(snapshot.source, { name: snapshot.source, ok: true, stale: false, lastSuccessAt: snapshot.at, errors: previous?.errors ?? 0 });
    void request(`source ${snapshot.source}`);
  }

  function onError(name: string, error: Error): void {
    const previous = sourceStatus.get(name) ?? { name, ok: false, stale: false };
    if (!failingSince.has(name)) failingSince.set(name, clock.now());
    // Log each failure streak once at warn, then at debug: a store that is down for an hour
    // must not flood the container log every 5 s.
    const level = previous.ok || previous.lastErrorAt === undefined ? 'warn' : 'debug';
    log[level]({ source: name, code: (error as PilotError).code }, `source ${name} failed, keeping its last good data: ${error.message}`);
    sourceStatus.set(name, {
      ...previous,
      ok: false,
      stale: true,
      errors: (previous.errors ?? 0) + 1,
      lastErrorAt: clock.now(),
      lastError: error.message,
    });
  }

  function startSources(): void {
    startedAt = clock.now();
    for (const source of options.sources) {
      source.start({ snapshot: onSnapshot, error: (e) => onError(source.name, e) });
    }
  }

  /** Resolves when every source has answered once (snapshot or error), or after `timeoutMs`. */
  async function firstAnswers(timeoutMs: number): Promise<void> {
    const deadline = clock.now() + timeoutMs;
    while (clock.now() < deadline && !stopped) {
      const all = [...sourceStatus.values()].every((s) => s.lastSuccessAt !== undefined || s.lastErrorAt !== undefined);
      if (all) return;
      await clock.sleep(50);
    }
  }

  function sources(): SourceStatus[] {
    return [...sourceStatus.values()];
  }

  /** Sources failing for longer than PILOT_STALE_AFTER (counted from start when they never answered): for /health. */
  function unhealthySources(): string[] {
    const now = clock.now();
    return sources()
      .map((s) => ({ s, since: s.lastSuccessAt === undefined ? startedAt : failingSince.get(s.name) }))
      .filter(({ s, since }) => !s.ok && since !== undefined && s.lastErrorAt !== undefined && now - since > options.staleAfterMs)
      .map(({ s, since }) => `source ${s.name} failing since ${new Date(since!).toISOString()}: ${s.lastError ?? ''}`);
  }

  async function stop(): Promise<void> {
    stopped = true;
    wakeOnStop();
    await Promise.allSettled(options.sources.map((s) => s.stop()));
    await running;
  }

  return {
    request,
    startSources,
    firstAnswers,
    sources,
    unhealthySources,
    /** A candidate from the latest snapshots with the builder in force (the first config). */
    build: async (): Promise<Candidate> => buildWith(await options.builder(false)),
    snapshots: (): ReadonlyMap<string, Snapshot> => snapshots,
    /** Entries the last pass left out, with why (for /status). */
    excluded: (): readonly Excluded[] => excludedNow,
    passes: () => passes,
    lastPass: () => lastPass,
    stop,
  };
}

export type Pilot = ReturnType<typeof createPilot>;
