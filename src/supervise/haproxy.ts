/**
 * The HAProxy master's lifecycle: start `haproxy -W -db -S <sock>,mode,600 -f <cfg>`, confirm
 * reloads one at a time, stop gracefully or fast, and report how it ended.
 *
 * HAProxy's stdout is inherited: its logs (`log stdout format raw`) reach the container's stdout
 * without passing through Node. Its stderr too, unless `logsToStdout` asks to drop the copies of
 * the events HAProxy reports on both (haproxy-stderr.ts).
 */
import { onExit as signalExitOnExit } from 'signal-exit';
import type { Logger } from '../log.js';
import { PilotError, describeError } from '../errors.js';
import {
  hasCliReloadStatus,
  masterCommand as defaultMasterCommand,
  parseHaproxyVersion,
  parseReloadAnswer,
  parseShowProc,
  runtimeCommand,
  type MasterCommandFn,
  type ShowProc,
} from '../haproxy/master-cli.js';
import { runtimeBatch as masterBatch, workerBatch } from '../haproxy/cli-batch.js';
import { spawnWithExeca, type ChildExit, type ChildHandle, type SpawnFn } from './child.js';
import { pipeLines, type LineSink } from './line-prefix.js';
import { alsoLogged } from './haproxy-stderr.js';
import type { ExitInfo, HaproxyMaster, MasterStatus, ReloadResult } from '../haproxy/master.js';

export type { MasterCommandFn };

export interface HaproxyMasterOptions {
  bin: string;
  configPath: string;
  /** HAProxy's `-C`: relative paths in the config (certificates) resolve against it, again at every reload. */
  chdir?: string;
  masterSocket: string;
  /**
   * The worker's own stats socket, when the config declares one (`stats socket … level admin`):
   * runtime batches go there, ten times faster than through the master (cli-batch.ts), and
   * through the master where it is missing or not the current worker's.
   */
  workerSocket?: string;
  stopDelayMs: number;
  stopTimeoutMs: number;
  reloadTimeoutMs: number;
  log: Logger;
  /** How long start() waits for the first worker. Default 60 s (resolvers, big maps…). */
  startTimeoutMs?: number;
  /** Longest poll period for `show proc` while starting and confirming 2.6 reloads (5 ms for the first 200 ms, then doubling up to it). Default 50 ms. */
  pollIntervalMs?: number;
  /** Extra haproxy arguments placed before `-f` (e.g. `-dr`). */
  extraArgs?: string[];
  /**
   * Whether the config logs proxy events to stdout (asked per line: settings can change on
   * reload). When given, HAProxy's stderr is read and the workers' copies of events HAProxy also
   * logs are dropped (haproxy-stderr.ts); the rest goes to `stderr` as it is.
   */
  logsToStdout?: () => boolean;
  /** Where HAProxy's stderr lines go when read (default process.stderr). */
  stderr?: LineSink;
  spawn?: SpawnFn;
  /** Master CLI transport (tests inject a fake). */
  command?: MasterCommandFn;
  /** signal-exit's onExit; tests inject a recorder. */
  onExit?: (cb: () => void) => () => void;
  now?: () => number;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Deferred<T> {
  promise: Promise<T>;
  resolve: (v: T | PromiseLike<T>) => void;
}
function deferred<T>(): Deferred<T> {
  let resolve!: (v: T | PromiseLike<T>) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

export function createHaproxyMaster(options: HaproxyMasterOptions): HaproxyMaster {
  const log = options.log;
  const spawn = options.spawn ?? spawnWithExeca;
  const command = options.command ?? defaultMasterCommand;
  const onExit = options.onExit ?? ((cb: () => void) => signalExitOnExit(cb));
  const now = options.now ?? Date.now;
  const pollMs = options.pollIntervalMs ?? 50;
  // 2.6's master CLI has no reload answer: `show proc` is asked again every 5 ms for the first
  // 200 ms (a reload of a small config takes ~20–60 ms; a doubling poll would see one done at 60 ms
  // only at 75 ms), then less and less often.
  const FAST_POLLS = 40;
  const backoff = (attempt: number): number => Math.min(pollMs, attempt < FAST_POLLS ? 5 : 5 * 2 ** (attempt - FAST_POLLS + 1));
  const startTimeoutMs = options.startTimeoutMs ?? 60_000;
  const cliTimeoutMs = Math.min(5000, Math.max(1000, options.reloadTimeoutMs));

  const exitedD = deferred<ExitInfo>();
  let pid: number | undefined;
  let child: ChildHandle | undefined;
  let started = false;
  let exitInfo: ExitInfo | undefined;
  let lastProc: ShowProc | undefined;
  let lastReloadAt: number | undefined;
  let stopPromise: Promise<ExitInfo> | undefined;
  let removeExitHook: (() => void) | undefined;

  // Reload serialisation: one running; calls during it share one pending follow-up.
  let running: Promise<ReloadResult> | undefined;
  let pending: { d: Deferred<ReloadResult>; reasons: string[] } | undefined;

  const showProc = async (timeoutMs = cliTimeoutMs): Promise<ShowProc> => {
    const proc = parseShowProc(await command(options.masterSocket, 'show proc', { timeoutMs }));
    lastProc = proc;
    return proc;
  };

  function status(): MasterStatus {
    return {
      ...(pid !== undefined && !exitInfo ? { masterPid: pid } : {}),
      workers: exitInfo ? [] : (lastProc?.workers.map((w) => w.pid) ?? []),
      oldWorkers: exitInfo ? [] : (lastProc?.oldWorkers.map((w) => w.pid) ?? []),
      reloads: lastProc?.master.reloads ?? 0,
      ...(lastReloadAt !== undefined ? { lastReloadAt } : {}),
      ...(lastProc?.master.version !== undefined ? { version: lastProc.master.version } : {}),
    };
  }

  async function runtimeBatch(commands: readonly string[]): Promise<string[]> {
    const worker = lastProc?.workers[0]?.pid;
    if (!options.workerSocket || worker === undefined || exitInfo) return masterBatch(options.masterSocket, commands, { command });
    const { answers, stopped } = await workerBatch(options.workerSocket, commands, worker, { command });
    if (!stopped) return answers;
    log.debug({ answered: answers.length, of: commands.length, reason: stopped }, 'worker stats socket: the rest of the batch goes through the master');
    return [...answers, ...(await masterBatch(options.masterSocket, commands.slice(answers.length), { command }))];
  }

  async function start(): Promise<void> {
    if (started) throw new PilotError('E_INTERNAL', 'haproxy master: start() called twice');
    started = true;
    const args = ['-W', '-db', '-S', `${options.masterSocket},mode,600`, ...(options.chdir ? ['-C', options.chdir] : []), ...(options.extraArgs ?? []), '-f', options.configPath];
    log.info({ bin: options.bin, args }, 'starting haproxy master');
    const filter = options.logsToStdout;
    const spawned = spawn(options.bin, args, { stdio: filter ? { stdout: 'inherit', stderr: 'pipe' } : 'inherit', detached: true });
    child = spawned;
    pid = spawned.pid;
    if (filter && spawned.stderr) {
      const sink = options.stderr ?? process.stderr;
      const masterPid = pid;
      pipeLines(spawned.stderr, '', { write: (line: string) => (filter() && alsoLogged(line.slice(0, -1), masterPid) ? true : sink.write(line)) });
    }
    if (pid !== undefined) {
      // Last resort: if Node exits while the master runs, do not leave HAProxy behind.
      removeExitHook = onExit(() => {
        if (!exitInfo) spawned.killTree();
      });
    }
    void spawned.exited.then((e: ChildExit) => {
      exitInfo = { code: e.code, signal: e.signal };
      removeExitHook?.();
      removeExitHook = undefined;
      if (e.error) log.error({ err: e.error, bin: options.bin }, 'haproxy could not be started');
      else log.info({ code: e.code, signal: e.signal }, 'haproxy master exited');
      exitedD.resolve(exitInfo);
    });

    const deadline = now() + startTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (exitInfo) throw startFailed();
      try {
        const proc = await showProc(1000);
        if (proc.workers.length > 0) {
          log.info(
            { masterPid: proc.master.pid, workers: proc.workers.map((w) => w.pid), version: proc.master.version },
            'haproxy master ready',
          );
          return;
        }
      } catch {
        // The socket appears only once the master has parsed the config: keep polling.
      }
      if (exitInfo) throw startFailed();
      if (now() >= deadline) {
        child?.killTree();
        throw new PilotError('E_HAPROXY', `haproxy master did not start a worker within ${startTimeoutMs} ms (config ${options.configPath})`, {
          details: { configPath: options.configPath },
        });
      }
      await Promise.race([sleep(backoff(attempt)), exitedD.promise]);
    }
  }

  function startFailed(): PilotError {
    const e = exitInfo!;
    const how = e.signal ? `signal ${e.signal}` : `code ${e.code}`;
    return new PilotError('E_HAPROXY', `haproxy master exited with ${how} before it was ready (config ${options.configPath})`, {
      details: { code: e.code, signal: e.signal, configPath: options.configPath },
    });
  }

  function reload(reason: string): Promise<ReloadResult> {
    if (!running) return reloadNow([reason]);
    // HAProxy loses a SIGUSR2 that arrives while it is loading: never overlap. Every caller
    // waiting here gets the result of one reload that starts after the running one ends.
    if (!pending) pending = { d: deferred<ReloadResult>(), reasons: [] };
    pending.reasons.push(reason);
    log.debug({ reason }, 'reload queued behind the running one');
    return pending.d.promise;
  }

  // Starts a reload immediately (used for the coalesced follow-up) and keeps the chain going.
  function reloadNow(reasons: string[]): Promise<ReloadResult> {
    running = runReload(reasons);
    const mine = running;
    const after = () => {
      if (running === mine) running = undefined;
      const next = pending;
      pending = undefined;
      if (next) next.d.resolve(reloadNow(next.reasons));
    };
    // then(after, after), not finally(): the caller handles a rejection, we must not re-raise it.
    mine.then(after, after);
    return mine;
  }

  async function runReload(reasons: string[]): Promise<ReloadResult> {
    const t0 = now();
    const fail = (error: string, workers: number[] = []): ReloadResult => {
      log.warn({ reasons, error }, 'haproxy reload failed; old workers keep serving');
      return { ok: false, workers, error, durationMs: now() - t0, ...(lastProc ? { reloads: lastProc.master.reloads } : {}) };
    };
    if (pid === undefined || exitInfo || !started) {
      throw new PilotError('E_HAPROXY', 'haproxy master is not running: cannot reload', { details: { reasons } });
    }
    if (stopPromise) return fail('haproxy is stopping');
    log.info({ reasons }, 'reloading haproxy');
    let before: ShowProc;
    try {
      before = await showProc();
    } catch (err) {
      return fail(`master CLI before reload: ${describeError(err)}`);
    }
    lastReloadAt = now();
    const version = parseHaproxyVersion(before.master.version ?? '');
    if (hasCliReloadStatus(version)) {
      let answer: string;
      try {
        answer = await command(options.masterSocket, 'reload', { timeoutMs: options.reloadTimeoutMs });
      } catch (err) {
        return fail(`reload not confirmed: ${describeError(err)}`);
      }
      const parsed = parseReloadAnswer(answer);
      if (parsed.success === false) {
        const after = await showProc().catch(() => undefined);
        return fail(`haproxy rejected the reload: ${alerts(parsed.startupLog)}`, after?.workers.map((w) => w.pid));
      }
      if (parsed.success === true) {
        const after = await showProc().catch(() => undefined);
        return succeed(t0, reasons, after);
      }
      // No Success= line (unexpected for 2.7+): fall back to watching show proc.
    } else {
      // 2.6: SIGUSR2 to the master; it re-execs and the CLI is briefly unavailable.
      child?.signal('SIGUSR2');
    }
    return confirmByShowProc(t0, reasons, before, fail);
  }

  async function confirmByShowProc(
    t0: number,
    reasons: string[],
    before: ShowProc,
    fail: (error: string, workers?: number[]) => ReloadResult,
  ): Promise<ReloadResult> {
    const previous = new Set([...before.workers, ...before.oldWorkers].map((w) => w.pid));
    const deadline = t0 + options.reloadTimeoutMs;
    let sawCounterWithoutWorker = 0;
    for (let attempt = 0; now() < deadline; attempt++) {
      await Promise.race([sleep(backoff(attempt)), exitedD.promise]);
      if (exitInfo) return fail('haproxy master exited during the reload');
      let cur: ShowProc;
      try {
        cur = await showProc(Math.max(200, Math.min(cliTimeoutMs, deadline - now())));
      } catch {
        continue; // mid re-exec
      }
      if (cur.master.reloads <= before.master.reloads) continue;
      const fresh = cur.workers.filter((w) => !previous.has(w.pid));
      if (fresh.length > 0) return succeed(t0, reasons, cur);
      const failedBefore = before.master.failedReloads;
      const failedNow = cur.master.failedReloads;
      if (failedBefore !== undefined && failedNow !== undefined && failedNow > failedBefore) {
        return fail('haproxy rejected the reload (failed reload counter increased; see its log)', cur.workers.map((w) => w.pid));
      }
      // Versions without a failed counter: the master answers only after loading, so a counter
      // that moved without a new worker (seen twice) is a failed reload.
      if (failedNow === undefined && ++sawCounterWithoutWorker >= 2) {
        return fail('haproxy did not start a new worker', cur.workers.map((w) => w.pid));
      }
    }
    return fail(`reload not confirmed within ${options.reloadTimeoutMs} ms`);
  }

  function succeed(t0: number, reasons: string[], after: ShowProc | undefined): ReloadResult {
    const workers = after?.workers.map((w) => w.pid) ?? [];
    const result: ReloadResult = {
      ok: true,
      workers,
      durationMs: now() - t0,
      ...(after ? { reloads: after.master.reloads } : {}),
    };
    log.info({ reasons, workers, reloads: result.reloads, durationMs: result.durationMs }, 'haproxy reload confirmed');
    return result;
  }

  function stop(mode: 'graceful' | 'fast'): Promise<ExitInfo> {
    if (exitInfo) return Promise.resolve(exitInfo);
    if (!started) return Promise.resolve({ code: null, signal: null });
    const master = child;
    if (pid === undefined || !master) return exitedD.promise;
    if (stopPromise) {
      // A fast stop during a graceful one escalates at once.
      if (mode === 'fast') master.signal('SIGTERM');
      return stopPromise;
    }
    log.info({ mode, stopDelayMs: options.stopDelayMs, stopTimeoutMs: options.stopTimeoutMs }, 'stopping haproxy');
    const killTimer = setTimeout(() => {
      if (!exitInfo) {
        log.warn({ stopTimeoutMs: options.stopTimeoutMs }, 'haproxy did not stop in time: SIGKILL');
        master.killTree();
      }
    }, options.stopTimeoutMs);
    stopPromise = (async () => {
      if (mode === 'graceful') {
        // Keep serving while load balancers in front notice we are going away.
        if (options.stopDelayMs > 0) await Promise.race([sleep(options.stopDelayMs), exitedD.promise]);
        // SIGUSR1: soft-stop; workers stop listening and finish in-flight requests.
        if (!exitInfo) master.signal('SIGUSR1');
      } else {
        master.signal('SIGTERM');
      }
      const info = await exitedD.promise;
      clearTimeout(killTimer);
      return info;
    })();
    return stopPromise;
  }

  return {
    start,
    reload,
    runtime: (cmd: string) => runtimeCommand(options.masterSocket, cmd, { timeoutMs: cliTimeoutMs, command }),
    runtimeBatch,
    masterCommand: (cmd: string) => command(options.masterSocket, cmd, { timeoutMs: cliTimeoutMs }),
    status,
    stop,
    signal: (sig: NodeJS.Signals) => {
      if (!exitInfo) child?.signal(sig);
    },
    exited: exitedD.promise,
  };
}

/** The ALERT lines of a startup log, which say why HAProxy refused a config. */
function alerts(startupLog: string): string {
  const lines = startupLog.split('\n').filter((l) => l.includes('[ALERT]'));
  return (lines.length > 0 ? lines : startupLog.split('\n').slice(-3)).join(' | ').trim();
}
