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
import { mergeSnapshots, type DesiredState, type Excluded } from './state/merge.js';
import { culprits, entriesOf, entryName, entrySource, pointedAt, without, type Entry } from './state/isolate.js';
import { internBackends } from './state/intern.js';
import type { Builder, Candidate } from './candidate.js';
import { describeError, PilotError } from './errors.js';

export interface PassResult {
  ok: boolean;
  kind: 'none' | 'runtime' | 'reload';
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

/** Refusals a discovered entry can cause (the rest are the operator's or HAProxy's own). */
const ISOLATABLE = new Set(['E_CHECK', 'E_PORT_BUSY']);

export interface PilotTransaction {
  /** What applying would take, without doing it: runtime-only plans skip the quiet wait. */
  plan?(candidate: Candidate): 'none' | 'runtime' | 'reload';
  /** Whether HAProxy would take the candidate (nothing installed): to find the entries it refuses. */
  verify?(candidate: Candidate): Promise<{ code: string; message: string; details?: Record<string, unknown> } | undefined>;
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

  function merge(builder: Builder): DesiredState {
    const desired = withoutQuarantined(mergeSnapshots(snapshots.values(), builder.reserved));
    reportExcluded(desired.excluded);
    return desired;
  }

  /**
   * Entries HAProxy refused stay out while their source gives them unchanged (the same interned
   * backend object, the same file bytes); a change brings them back for another try.
   */
  const quarantine = new Map<string, { entry: Entry; data?: string; reason: string }>();
  const quarantineKey = (e: Entry): string => `${entrySource(e)}\0${e.kind}\0${entryName(e)}`;
  function withoutQuarantined(desired: DesiredState): DesiredState {
    if (quarantine.size === 0) return desired;
    const out = new Set<Entry>();
    const excluded = [...desired.excluded];
    for (const e of entriesOf(desired)) {
      const q = quarantine.get(quarantineKey(e));
      if (!q) continue;
      const same = e.kind === 'backend' ? q.entry.kind === 'backend' && q.entry.backend === e.backend : q.data === desired.files[e.path];
      if (!same) {
        quarantine.delete(quarantineKey(e));
        continue;
      }
      out.add(e);
      excluded.push({ source: entrySource(e), entry: entryName(e), reason: q.reason });
    }
    return { ...without(desired, out), excluded };
  }

  /**
   * HAProxy refused a candidate: find the discovered entries at fault (where HAProxy points, else
   * by bisection), keep them out, and say which. False when the fault is the operator's own.
   */
  async function isolate(builder: Builder, refused: Candidate, error: { message: string; details?: Record<string, unknown> }): Promise<boolean> {
    const verify = options.transaction.verify;
    if (!verify) return false;
    const desired = merge(builder);
    const entries = entriesOf(desired);
    const passes = async (out: ReadonlySet<Entry>): Promise<boolean> => (await verify(await builder.build(without(desired, out)))) === undefined;
    const details = error.details ?? {};
    const pointed = pointedAt(entries, refused.text, { message: error.message, ...(typeof details['line'] === 'number' ? { line: details['line'] } : {}), ...(typeof details['output'] === 'string' ? { output: details['output'] } : {}) });
    const bad = pointed.length > 0 && (await passes(new Set(pointed))) ? pointed : await culprits(entries, passes);
    if (!bad || bad.length === 0) return false;
    const why = `HAProxy refused it: ${error.message}`;
    for (const e of bad) quarantine.set(quarantineKey(e), { entry: e, ...(e.kind === 'file' ? { data: desired.files[e.path]! } : {}), reason: why });
    return true;
  }

  async function buildWith(builder: Builder, desired: DesiredState = merge(builder)): Promise<Candidate> {
    const candidate = await builder.build(desired);
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
      let candidate = built?.candidate ?? (await buildWith(builder));
      let result = await options.transaction.apply(candidate, reason, { force: req.force });
      // One bad entry blocks nothing: leave out what HAProxy refused and apply the rest.
      if (!result.ok && result.error && ISOLATABLE.has(result.error.code) && (await isolate(builder, candidate, result.error))) {
        candidate = await buildWith(builder);
        result = await options.transaction.apply(candidate, `${reason} (without what HAProxy refused)`, { force: req.force });
      }
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
