/**
 * The applier: turns a rendered candidate into what HAProxy runs, with the least disruption and
 * never leaving a broken config behind.
 *
 *   same text (sha256)            → nothing
 *   only servers changed          → write candidate, `haproxy -c`, runtime API ops through the
 *                                   master, then rename the candidate over the config so the next
 *                                   reload starts from the same state; any failed op → reload
 *   anything else                 → write candidate, `haproxy -c`, bind-port preflight, rename
 *                                   over the config, reload through the master, confirmed
 *
 * A failure at any step keeps the running HAProxy and its config file as they were (the file is
 * restored when the master refuses the reload), keeps the candidate as haproxy.cfg.rejected, and
 * shows in status(). Applies are serialised: one runs at a time, in call order.
 */
import { createHash } from 'node:crypto';
import { readFile, unlink } from 'node:fs/promises';
import type { Logger } from '../log.js';
import { PilotError, type ErrorCode } from '../errors.js';
import type { DiscoveredBackend } from '../state/model.js';
import type { HaproxyMaster, ReloadResult } from '../haproxy/master.js';
import { checkConfig, type ConfigChecker } from './check.js';
import { configSkeleton, planApply, runningAfter, type Plan, type RunningBackend, type RuntimeOp } from './plan.js';
import { bindPorts, checkPortsFree, type BindPort } from './ports.js';
import { candidatePath, rejectedPath, renameDurable, writeAtomic, type FileWriter } from './write.js';

export type ApplyKind = 'none' | 'runtime' | 'reload';

export interface ApplyCandidate {
  text: string;
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
  /** sha256 of the config HAProxy runs after this apply. */
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
  /** Reload even when the text is unchanged (SIGHUP, POST /reload: certificates may have changed). */
  force?: boolean;
}

export interface Applier {
  apply(candidate: ApplyCandidate, reason: string, options?: ApplyOptions): Promise<ApplyResult>;
  status(): ApplyStatus;
}

/** Refuses (throws E_PORT_BUSY) when the candidate adds a port someone else holds. */
export type PortChecker = (next: BindPort[], current: BindPort[]) => Promise<unknown>;

export interface ApplierOptions {
  master: HaproxyMaster;
  bin: string;
  runDir: string;
  configPath: string;
  check?: ConfigChecker;
  write?: FileWriter;
  ports?: PortChecker;
  log: Logger;
  clock?: () => number;
  checkTimeoutMs?: number;
  /**
   * The candidate HAProxy was started with (already written to configPath and checked). Without
   * it the applier reads configPath at the first apply and, not knowing the servers, reloads.
   */
  initial?: ApplyCandidate;
}

interface Installed {
  text: string;
  hash: string;
}

export const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

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

export function createApplier(options: ApplierOptions): Applier {
  const { master, bin, runDir, configPath } = options;
  const check = options.check ?? checkConfig;
  const write = options.write ?? writeAtomic;
  const ports: PortChecker = options.ports ?? ((next, current) => checkPortsFree(next, current));
  const clock = options.clock ?? Date.now;
  // The caller passes log.child({ component: 'apply' }) (as for every component).
  const log = options.log;
  const candidate = candidatePath(runDir);
  const rejected = rejectedPath(runDir);

  let installed: Installed | undefined = options.initial ? { text: options.initial.text, hash: sha256(options.initial.text) } : undefined;
  let loaded = installed !== undefined;
  /** What the running HAProxy holds; undefined when unknown (before the first apply). */
  let running: RunningBackend[] | undefined = options.initial ? runningAfter('reload', [], options.initial.backends) : undefined;
  const counters = { reloads: 0, runtimeOps: 0, applyFailures: 0 };
  let lastReloadAt: number | undefined;
  let lastSuccessAt: number | undefined;
  let lastApply: ApplyStatus['lastApply'];
  let lastRejected: string | undefined;
  /** Set when runtime ops reached HAProxy but the apply then failed: only a reload is trustworthy. */
  let dirty = false;
  let chain: Promise<unknown> = Promise.resolve();

  /** The config file HAProxy was started with, read once: its text is the base of the first diff. */
  async function loadInstalled(): Promise<void> {
    if (loaded) return;
    loaded = true;
    try {
      const text = await readFile(configPath, 'utf8');
      installed = { text, hash: sha256(text) };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }

  async function writeAndCheck(text: string): Promise<void> {
    await write(candidate, text);
    const result = await check({ bin, path: candidate, ...(options.checkTimeoutMs ? { timeoutMs: options.checkTimeoutMs } : {}) });
    for (const w of result.warnings) log.warn({ file: candidate }, w);
  }

  /** Moves the checked candidate over the live config (a copy when they are on different filesystems). */
  async function install(text: string): Promise<void> {
    try {
      await renameDurable(candidate, configPath);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EXDEV') throw err;
      await write(configPath, text);
      await unlink(candidate).catch(() => undefined);
    }
  }

  /** Keeps the refused candidate as haproxy.cfg.rejected and adds its path to the error. */
  async function reject(text: string, error: ApplyError, candidateOnDisk: boolean): Promise<ApplyError> {
    try {
      if (candidateOnDisk) await renameDurable(candidate, rejected);
      else await write(rejected, text);
      lastRejected = rejected;
      return { ...error, details: { ...(error.details ?? {}), rejected } };
    } catch (err) {
      log.warn({ err }, `could not keep the rejected candidate as ${rejected}`);
      return error;
    }
  }

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
      // The full haproxy -c output goes to the log; the message names the file:line.
      log.error({ kind: result.kind, reason: result.reason, error: result.error }, `apply failed, HAProxy keeps its running config: ${result.error?.message}`);
    }
    return result;
  }

  async function doApply(cand: ApplyCandidate, reason: string, opts: ApplyOptions): Promise<ApplyResult> {
    const at = clock();
    const base = { reason, at };
    const done = (r: Omit<ApplyResult, 'at' | 'reason' | 'durationMs'>): ApplyResult => finish({ ...base, ...r, durationMs: clock() - at });
    const hash = sha256(cand.text);
    let kind: ApplyKind = 'none';
    let planReason: string | undefined;
    let checked = false;
    let opsSent = 0;
    try {
      await loadInstalled();
      if (installed && installed.hash === hash && !opts.force && !dirty) {
        // The running config already is this text; remember the backends if we did not know them.
        running ??= runningAfter('reload', [], cand.backends);
        return done({ ok: true, kind: 'none', configHash: hash });
      }
      let plan: Plan;
      if (opts.force) plan = { kind: 'reload', reason: 'reload requested' };
      else if (dirty) plan = { kind: 'reload', reason: 'an earlier apply failed after runtime ops: reload to a known state' };
      else if (!installed || !running) plan = { kind: 'reload', reason: 'first apply: the running state is unknown' };
      else {
        const names = [...running.map((b) => b.name), ...cand.backends.map((b) => b.name)];
        const restChanged = configSkeleton(installed.text, names) !== configSkeleton(cand.text, names);
        plan = planApply({ running, next: cand.backends, restChanged });
      }

      if (plan.kind !== 'reload') {
        kind = plan.kind === 'runtime' ? 'runtime' : 'none';
        await writeAndCheck(cand.text);
        checked = true;
        const { sent, failed } = plan.kind === 'runtime' ? await runOps(plan.ops) : { sent: [] as string[], failed: undefined };
        opsSent = sent.length;
        if (!failed) {
          await install(cand.text);
          installed = { text: cand.text, hash };
          running = runningAfter('runtime', running ?? [], cand.backends);
          return done({ ok: true, kind, configHash: hash, ...(sent.length ? { ops: sent } : {}) });
        }
        log.warn({ failed, sent }, 'a runtime API op failed: falling back to a reload');
        planReason = `runtime op failed (${failed})`;
      } else planReason = plan.reason;

      kind = 'reload';
      if (!checked) await writeAndCheck(cand.text);
      await ports(bindPorts(cand.text), installed ? bindPorts(installed.text) : []);
      const previous = installed;
      await install(cand.text);
      let reload: ReloadResult;
      try {
        reload = await master.reload(reason);
      } catch (err) {
        reload = { ok: false, workers: [], error: (err as Error).message, durationMs: clock() - at };
      }
      if (!reload.ok) {
        // The master kept the old workers: put their config back so the file matches what runs.
        if (previous) await write(configPath, previous.text).catch((err) => log.error({ err }, `could not restore ${configPath}`));
        // The old workers run the previous file; runtime ops already sent (if any) may not match it.
        if (opsSent > 0) dirty = true;
        const error = await reject(cand.text, toApplyError(new PilotError('E_RELOAD', `HAProxy did not accept the reload: ${reload.error ?? 'no new worker'}`, { details: { reload } })), false);
        return done({ ok: false, kind, planReason, reload, error });
      }
      installed = { text: cand.text, hash };
      running = runningAfter('reload', running ?? [], cand.backends);
      dirty = false;
      counters.reloads++;
      lastReloadAt = clock();
      return done({ ok: true, kind, planReason, configHash: hash, reload });
    } catch (err) {
      let error = toApplyError(err);
      if (opsSent > 0) dirty = true;
      if (error.code === 'E_CHECK' || error.code === 'E_PORT_BUSY') error = await reject(cand.text, error, true);
      else await unlink(candidate).catch(() => undefined);
      return done({ ok: false, kind, ...(planReason ? { planReason } : {}), ...(installed ? { configHash: installed.hash } : {}), error });
    }
  }

  function serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = chain.then(fn, fn);
    chain = run.catch(() => undefined);
    return run;
  }

  return {
    apply: (cand, reason, opts = {}) => serial(() => doApply(cand, reason, opts)),
    status: () => ({
      configPath,
      ...(installed ? { configHash: installed.hash } : {}),
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
