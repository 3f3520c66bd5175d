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
import { configSkeleton, planApply, runningAfter, type Plan, type RunningBackend, type RuntimeOp } from './plan.js';
import { bindPorts, checkPortsFree, type BindPort } from './ports.js';

export type ApplyKind = 'none' | 'runtime' | 'reload';

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
}

export interface ApplyOptions {
  /** Reload even when nothing changed (SIGHUP, POST /reload). */
  force?: boolean;
}

export interface Transaction {
  /** What applying the candidate would take (no side effects). */
  plan(candidate: ApplyCandidate): ApplyKind;
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
  /** What the running HAProxy holds (after earlier runtime ops). */
  let running: RunningBackend[] = runningAfter('reload', [], options.initial.backends);
  const counters = { reloads: 0, runtimeOps: 0, applyFailures: 0 };
  let lastReloadAt: number | undefined;
  let lastSuccessAt: number | undefined;
  let lastApply: ApplyStatus['lastApply'];
  let lastRejected: string | undefined;
  /** Set when runtime ops reached HAProxy but the apply then failed: only a reload is trustworthy. */
  let dirty = false;

  async function runOps(ops: RuntimeOp[]): Promise<{ sent: string[]; failed?: string }> {
    const sent: string[] = [];
    for (const op of ops) {
      let answer: string;
      try {
        answer = await master.runtime(op.command);
      } catch (err) {
        return { sent, failed: `${op.command}: ${(err as Error).message}` };
      }
      sent.push(op.command);
      counters.runtimeOps++;
      if (!runtimeAnswerOk(op, answer)) return { sent, failed: `${op.command}: HAProxy answered ${JSON.stringify(answer.trim())}` };
    }
    return { sent };
  }

  function plan(cand: ApplyCandidate, opts: ApplyOptions): Plan {
    if (opts.force) return { kind: 'reload', reason: 'reload requested' };
    if (dirty) return { kind: 'reload', reason: 'an earlier apply failed after runtime ops: reload to a known state' };
    if (filesHash(cand) !== installed.files) return { kind: 'reload', reason: 'certificates or other files changed' };
    const names = [...running.map((b) => b.name), ...cand.backends.map((b) => b.name)];
    const restChanged = configSkeleton(installed.text, names) !== configSkeleton(cand.text, names);
    return planApply({ running, next: cand.backends, restChanged });
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
    running = runningAfter('reload', running, cand.backends);
    dirty = false;
    counters.reloads++;
    lastReloadAt = clock();
    await generations.prune().catch((err) => log.warn({ err }, 'could not remove old generations'));
    return { ok: true, configHash: hash, reload: result };
  }

  async function apply(cand: ApplyCandidate, reason: string, opts: ApplyOptions = {}): Promise<ApplyResult> {
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
          running = runningAfter('runtime', running, cand.backends);
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

  return {
    plan: (cand) => (installed.hash === candidateHash(cand) && !dirty ? 'none' : plan(cand, {}).kind),
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
    }),
  };
}
