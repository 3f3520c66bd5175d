/**
 * A pass's candidate becomes what HAProxy runs as one transaction, or changes nothing:
 *
 *   same config and files           → nothing
 *   only servers changed            → runtime API commands through the master, then the live
 *                                     config is rewritten to mirror them (no `haproxy -c`: the
 *                                     next reload checks the file as part of its own candidate)
 *   anything else                   → stage config + files in a new generation folder,
 *                                     `haproxy -c` against the staged set, bind-port preflight,
 *                                     make it live (one symlink rename), reload through the
 *                                     master and wait for its confirmation
 *
 * A refusal at any step leaves every file HAProxy reads as it was (the live symlink is put back
 * when the master refuses the reload), keeps the candidate whole in <runDir>/rejected/, and shows
 * in status(). Programs and settings are switched by the caller, and only after an apply
 * succeeded (src/pilot.ts). The reconcile loop calls apply() one pass at a time.
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../log.js';
import { PilotError, type ErrorCode } from '../errors.js';
import type { DiscoveredBackend } from '../state/model.js';
import type { HaproxyMaster, ReloadResult } from '../haproxy/master.js';
import { checkConfig, type ConfigChecker } from './check.js';
import type { Generations, Stage } from './generations.js';
import { planApply, type Lingering, type Plan, type RuntimeOp } from './plan.js';
import { bindPorts, checkPortsFree, type BindPort } from './ports.js';

export type ApplyKind = 'none' | 'runtime' | 'reload';

export interface DryRun {
  kind: ApplyKind;
  /** Why a reload is needed. */
  reason?: string;
  /** The runtime API commands, in order. */
  commands: string[];
}

/** What a pass asks HAProxy to run. */
export interface ApplyCandidate {
  /** haproxy.cfg */
  text: string;
  /** Files the config reads, by path relative to the generation folder (`certs/site.pem`). */
  files: Readonly<Record<string, string>>;
  backends: readonly DiscoveredBackend[];
}

export interface ApplyError {
  code: ErrorCode;
  message: string;
  details?: Record<string, unknown>;
}

export interface ApplyResult {
  ok: boolean;
  kind: ApplyKind;
  /** Why the apply was asked for (from the caller). */
  reason: string;
  /** Why a reload was needed, or why runtime ops fell back to one. */
  planReason?: string;
  at: number;
  durationMs: number;
  /** sha256 of the config and files HAProxy runs after this apply. */
  configHash?: string;
  /** Runtime API commands sent. */
  ops?: string[];
  reload?: ReloadResult;
  error?: ApplyError;
}

export interface ApplyStatus {
  configPath: string;
  configHash?: string;
  lastApply?: Pick<ApplyResult, 'ok' | 'at' | 'kind' | 'reason' | 'durationMs' | 'error'>;
  lastSuccessAt?: number;
  reloads: number;
  lastReloadAt?: number;
  runtimeOps: number;
  applyFailures: number;
  /** Where the last rejected candidate was kept. */
  rejectedPath?: string;
  /** Servers removed from the config that HAProxy still holds in maint until they are idle (`backend/server`). */
  removing: string[];
}

export interface ApplyOptions {
  /** Reload even when nothing changed (SIGHUP, POST /reload). */
  force?: boolean;
}

/** The first retry of `del server` for a removed server, doubling up to SWEEP_MAX_MS. */
const SWEEP_FIRST_MS = 200;
const SWEEP_MAX_MS = 10_000;

export interface Transaction {
  /** Stops retrying deletions (at shutdown). */
  close(): void;
  /** What applying the candidate would take (no side effects). */
  plan(candidate: ApplyCandidate): ApplyKind;
  /** The same, with why a reload is needed or the runtime commands it would send (`haproxy-pilot plan`). */
  dryRun(candidate: ApplyCandidate): DryRun;
  /** Whether HAProxy (`haproxy -c`) and the port preflight would take the candidate; nothing is installed or kept. */
  verify(candidate: ApplyCandidate): Promise<ApplyError | undefined>;
  apply(candidate: ApplyCandidate, reason: string, options?: ApplyOptions): Promise<ApplyResult>;
  status(): ApplyStatus;
}

/** Refuses (throws E_PORT_BUSY) when the candidate adds a port someone else holds. */
export type PortChecker = (next: BindPort[], current: BindPort[]) => Promise<unknown>;

export interface CheckDeps {
  bin: string;
  generations: Generations;
  /** Whether HAProxy runs with `-C <live>` (rendered configs): then the check runs in the stage. */
  relativePaths: boolean;
  check?: ConfigChecker;
  log: Logger;
}

export interface TransactionOptions extends CheckDeps {
  master: HaproxyMaster;
  /** The candidate HAProxy was started with (installed by installFirst). */
  initial: ApplyCandidate;
  ports?: PortChecker;
  clock?: () => number;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** One hash over the config and every file it reads: any byte changed → another hash. */
export function candidateHash(c: Pick<ApplyCandidate, 'text' | 'files'>): string {
  const h = createHash('sha256').update(c.text);
  for (const name of Object.keys(c.files).sort()) h.update(`\0${name}\0`).update(c.files[name]!);
  return h.digest('hex');
}

const filesHash = (c: Pick<ApplyCandidate, 'files'>): string => candidateHash({ text: '', files: c.files });

/**
 * Whether a runtime API answer means success. `set server … state|weight` answer nothing;
 * `set server … addr` answers "IP changed from … to …" or "no need to change the addr"
 * (measured on 2.6.12). Errors are prose: "No such server.", "Invalid addr '…'", "Backend is
 * using a static LB algorithm and only accepts weights '0%' and '100%'."
 */
export function runtimeAnswerOk(op: Pick<RuntimeOp, 'kind'>, answer: string): boolean {
  const text = answer.trim();
  if (op.kind === 'add') return /^New server registered\.?$/.test(text);
  if (text === '') return true;
  if (op.kind !== 'addr') return false;
  if (/invalid|no such|denied|unknown|error|require|expects|can only|not allowed|cannot|can't|unable/i.test(text)) return false;
  return /changed from|no need to change/i.test(text);
}

function toApplyError(err: unknown): ApplyError {
  if (err instanceof PilotError) return { code: err.code, message: err.message, ...(err.details ? { details: err.details } : {}) };
  return { code: 'E_INTERNAL', message: err instanceof Error ? err.message : String(err) };
}

/** Stage a candidate and run `haproxy -c` against the staged set; a refusal keeps it as rejected. */
async function stageAndCheck(deps: CheckDeps, candidate: ApplyCandidate): Promise<Stage> {
  const stage = await deps.generations.stage(candidate);
  try {
    const result = await (deps.check ?? checkConfig)({ bin: deps.bin, path: stage.configPath, ...(deps.relativePaths ? { chdir: stage.dir } : {}) });
    for (const w of result.warnings) deps.log.warn({ file: stage.configPath }, w);
    return stage;
  } catch (err) {
    const rejected = await deps.generations.reject(stage).catch(() => undefined);
    if (err instanceof PilotError && rejected) {
      // The message names the staged file; point at the kept copy, which outlives the stage.
      throw new PilotError(err.code, err.message.split(stage.dir).join(deps.generations.rejectedDir), { cause: err.cause, details: { ...err.details, rejected } });
    }
    throw err;
  }
}

/** The config HAProxy starts with: staged, checked and made live before the master starts. */
export async function installFirst(deps: CheckDeps, candidate: ApplyCandidate): Promise<void> {
  const stage = await stageAndCheck(deps, candidate);
  await deps.generations.install(stage);
  await deps.generations.prune();
}

export function createTransaction(options: TransactionOptions): Transaction {
  const { master, generations, log } = options;
  const ports: PortChecker = options.ports ?? ((next, current) => checkPortsFree(next, current));
  const clock = options.clock ?? Date.now;

  let installed = { text: options.initial.text, files: filesHash(options.initial), hash: candidateHash(options.initial) };
  /** The generation last staged and checked (installFirst checked the initial one); a runtime rewrite of the live file moves `installed` away from it. */
  let checkedHash: string | undefined = installed.hash;
  /** Servers removed from the config that HAProxy still holds in maint until they can be deleted. */
  const lingering = new Map<string, Lingering>();
  let sweepTimer: NodeJS.Timeout | undefined;
  let sweepDelayMs = SWEEP_FIRST_MS;
  let chain: Promise<unknown> = Promise.resolve();
  let closed = false;
  const counters = { reloads: 0, runtimeOps: 0, applyFailures: 0 };
  let lastReloadAt: number | undefined;
  let lastSuccessAt: number | undefined;
  let lastApply: ApplyStatus['lastApply'];
  let lastRejected: string | undefined;
  /** Set when runtime ops reached HAProxy but the apply then failed: only a reload is trustworthy. */
  let dirty = false;

  /** The plan's commands as one batch (master.runtimeBatch); stops judging at the first refusal. */
  async function runOps(ops: RuntimeOp[]): Promise<{ sent: string[]; failed?: string }> {
    let answers: string[];
    try {
      answers = await master.runtimeBatch(ops.map((op) => op.command));
    } catch (err) {
      // Unknown how far the batch got: the caller reloads to a known state.
      return { sent: ops.map((op) => op.command), failed: (err as Error).message };
    }
    counters.runtimeOps += ops.length;
    const bad = ops.findIndex((op, i) => !runtimeAnswerOk(op, answers[i]!));
    if (bad < 0) return { sent: ops.map((op) => op.command) };
    return { sent: ops.map((op) => op.command), failed: `${ops[bad]!.command}: HAProxy answered ${JSON.stringify(answers[bad]!.trim())}` };
  }

  function plan(cand: ApplyCandidate, opts: ApplyOptions): Plan {
    if (opts.force) return { kind: 'reload', reason: 'reload requested' };
    if (dirty) return { kind: 'reload', reason: 'an earlier apply failed after runtime ops: reload to a known state' };
    if (filesHash(cand) !== installed.files) return { kind: 'reload', reason: 'certificates or other files changed' };
    return planApply({ running: installed.text, next: cand.text, lingering });
  }

  /**
   * Deletes the servers that left the config once HAProxy lets it: `del server` is refused while
   * a server still has connections (2.6–2.9 count idle ones too), so it is retried with a growing
   * delay; in-flight requests finish first. A reload drops them all anyway.
   */
  function scheduleSweep(): void {
    if (sweepTimer || lingering.size === 0 || closed) return;
    sweepTimer = setTimeout(() => {
      sweepTimer = undefined;
      void serial(sweep);
    }, sweepDelayMs);
    sweepTimer.unref();
  }

  async function sweep(): Promise<void> {
    const targets = [...lingering.values()];
    if (targets.length === 0 || closed) return;
    const answers = await master.runtimeBatch(targets.map((t) => `del server ${t.backend}/${t.server}`)).catch(() => undefined);
    targets.forEach((t, i) => {
      const answer = answers?.[i]?.trim() ?? '';
      // "No such server." : already gone (a reload happened meanwhile).
      if (/^Server deleted\.?$|^No such server/.test(answer)) lingering.delete(`${t.backend}/${t.server}`);
    });
    if (lingering.size > 0) log.debug({ servers: [...lingering.keys()] }, 'removed servers still hold connections: deleting them later');
    sweepDelayMs = lingering.size > 0 ? Math.min(sweepDelayMs * 2, SWEEP_MAX_MS) : SWEEP_FIRST_MS;
    scheduleSweep();
  }

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  }

  function finish(result: ApplyResult): ApplyResult {
    lastApply = {
      ok: result.ok,
      at: result.at,
      kind: result.kind,
      reason: result.reason,
      durationMs: result.durationMs,
      ...(result.error ? { error: result.error } : {}),
    };
    if (result.ok) {
      lastSuccessAt = result.at;
      // 'none' is the common case (a source re-sent what it had): keep it out of the info log.
      log[result.kind === 'none' ? 'debug' : 'info']({ kind: result.kind, reason: result.reason, planReason: result.planReason, ops: result.ops, configHash: result.configHash, durationMs: result.durationMs }, `applied (${result.kind})`);
    } else {
      counters.applyFailures++;
      if (typeof result.error?.details?.['rejected'] === 'string') lastRejected = result.error.details['rejected'];
      // The full haproxy -c output goes to the log; the message names the file:line.
      log.error({ kind: result.kind, reason: result.reason, error: result.error }, `apply failed, HAProxy keeps its running config: ${result.error?.message}`);
    }
    return result;
  }

  async function reload(cand: ApplyCandidate, hash: string, reason: string): Promise<Omit<ApplyResult, 'at' | 'reason' | 'durationMs' | 'kind'>> {
    if (hash === installed.hash && hash === checkedHash) {
      // A forced reload (SIGHUP, POST /reload) of the generation that runs, unchanged since it was
      // checked: there is nothing new to stage or check, HAProxy reads the same files again.
      let result: ReloadResult;
      try {
        result = await master.reload(reason);
      } catch (err) {
        result = { ok: false, workers: [], error: (err as Error).message, durationMs: 0 };
      }
      if (!result.ok) throw new PilotError('E_RELOAD', `HAProxy did not accept the reload: ${result.error ?? 'no new worker'}`, { details: { reload: result } });
      reloaded();
      return { ok: true, configHash: hash, reload: result };
    }
    const stage = await stageAndCheck(options, cand);
    try {
      await ports(bindPorts(cand.text), bindPorts(installed.text));
    } catch (err) {
      const rejected = await generations.reject(stage);
      throw err instanceof PilotError ? new PilotError(err.code, err.message, { cause: err.cause, details: { ...err.details, rejected } }) : err;
    }
    const live = await generations.install(stage);
    let result: ReloadResult;
    try {
      result = await master.reload(reason);
    } catch (err) {
      result = { ok: false, workers: [], error: (err as Error).message, durationMs: 0 };
    }
    if (!result.ok) {
      // The master kept the old workers: put their generation back so the files match what runs.
      await live.undo();
      const rejected = await generations.reject(live.installed).catch(() => undefined);
      throw new PilotError('E_RELOAD', `HAProxy did not accept the reload: ${result.error ?? 'no new worker'}`, { details: { reload: result, ...(rejected ? { rejected } : {}) } });
    }
    installed = { text: cand.text, files: filesHash(cand), hash };
    checkedHash = hash;
    reloaded();
    await generations.prune().catch((err) => log.warn({ err }, 'could not remove old generations'));
    return { ok: true, configHash: hash, reload: result };
  }

  /** After a confirmed reload: the new worker has only what the file says. */
  function reloaded(): void {
    lingering.clear();
    dirty = false;
    counters.reloads++;
    lastReloadAt = clock();
  }

  function apply(cand: ApplyCandidate, reason: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
    return serial(() => applyNow(cand, reason, opts));
  }

  async function applyNow(cand: ApplyCandidate, reason: string, opts: ApplyOptions): Promise<ApplyResult> {
    const at = clock();
    const done = (r: Omit<ApplyResult, 'at' | 'reason' | 'durationMs'>): ApplyResult => finish({ reason, at, ...r, durationMs: clock() - at });
    const hash = candidateHash(cand);
    if (installed.hash === hash && !opts.force && !dirty) {
      return done({ ok: true, kind: 'none', configHash: hash });
    }
    const p = plan(cand, opts);
    let planReason = p.kind === 'reload' ? p.reason : undefined;
    let ops: string[] = [];
    try {
      if (p.kind !== 'reload') {
        const { sent, failed } = p.kind === 'runtime' ? await runOps(p.ops) : { sent: [] as string[], failed: undefined };
        ops = sent;
        if (!failed) {
          // The live file mirrors what runs, so the next reload starts from the same servers.
          await generations.rewriteLive(cand.text);
          installed = { text: cand.text, files: installed.files, hash };
          if (p.kind === 'runtime') {
            for (const r of p.removed) lingering.set(`${r.backend}/${r.server}`, r);
            for (const r of p.returned) lingering.delete(r);
            scheduleSweep();
          }
          return done({ ok: true, kind: p.kind === 'runtime' ? 'runtime' : 'none', configHash: hash, ...(sent.length ? { ops: sent } : {}) });
        }
        log.warn({ failed, sent }, 'a runtime API op failed: falling back to a reload');
        planReason = `runtime op failed (${failed})`;
      }
      const r = await reload(cand, hash, reason);
      return done({ ...r, kind: 'reload', ...(planReason ? { planReason } : {}), ...(ops.length ? { ops } : {}) });
    } catch (err) {
      // Runtime ops reached the old workers, and the file they mirror was not written.
      if (ops.length > 0) dirty = true;
      return done({ ok: false, kind: 'reload', ...(planReason ? { planReason } : {}), configHash: installed.hash, error: toApplyError(err) });
    }
  }

  async function verify(cand: ApplyCandidate): Promise<ApplyError | undefined> {
    const stage = await generations.stage(cand);
    try {
      await (options.check ?? checkConfig)({ bin: options.bin, path: stage.configPath, ...(options.relativePaths ? { chdir: stage.dir } : {}) });
      await ports(bindPorts(cand.text), bindPorts(installed.text));
      return undefined;
    } catch (err) {
      return toApplyError(err);
    } finally {
      await generations.discard(stage).catch(() => undefined);
    }
  }

  return {
    verify: (cand) => serial(() => verify(cand)),
    close: () => {
      closed = true;
      if (sweepTimer) clearTimeout(sweepTimer);
    },
    plan: (cand) => (installed.hash === candidateHash(cand) && !dirty ? 'none' : plan(cand, {}).kind),
    dryRun: (cand) => {
      if (installed.hash === candidateHash(cand) && !dirty) return { kind: 'none', commands: [] };
      const p = plan(cand, {});
      if (p.kind === 'reload') return { kind: 'reload', reason: p.reason, commands: [] };
      return { kind: p.kind, commands: p.kind === 'runtime' ? p.ops.map((op) => op.command) : [] };
    },
    apply,
    status: () => ({
      configPath: generations.liveConfig,
      configHash: installed.hash,
      ...(lastApply ? { lastApply } : {}),
      ...(lastSuccessAt !== undefined ? { lastSuccessAt } : {}),
      reloads: counters.reloads,
      ...(lastReloadAt !== undefined ? { lastReloadAt } : {}),
      runtimeOps: counters.runtimeOps,
      applyFailures: counters.applyFailures,
      ...(lastRejected ? { rejectedPath: lastRejected } : {}),
      removing: [...lingering.keys()],
    }),
  };
}
