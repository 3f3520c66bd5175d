import diagnosticsChannel from 'node:diagnostics_channel';
import type { ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import type { Logger } from '../log.js';
import { describeError } from '../errors.js';
import { loadLibc, type Libc } from './libc.js';
import type { SignalSource } from './signals.js';

export type ReaperMode = 'pid1' | 'subreaper' | 'none';

export interface ReaperOptions {
  /** The libc binding, or a loader for it (default: koffi's, loaded on start()). */
  libc?: Libc | (() => Libc);
  log: Logger;
  /** Where procfs is mounted (tests point this at a fake tree). */
  procRoot?: string;
  /** Safety-net scan period; SIGCHLD triggers scans in between. */
  intervalMs?: number;
  isPid1?: boolean;
  /** Our pid as procRoot sees it (used only by the /proc/<pid>/stat fallback). */
  selfPid?: number;
  /** Where the SIGCHLD listener goes (tests pass an EventEmitter). */
  proc?: SignalSource;
}

export interface ReaperStart {
  /** Who receives orphans: we as PID 1, we as a child subreaper, or someone else. */
  mode: ReaperMode;
  /** False when libc could not be bound: nothing gets reaped. */
  reaping: boolean;
}

export interface Reaper {
  start(): ReaperStart;
  stop(): void;
  /** One synchronous scan; returns how many orphans were reaped. */
  reapNow(): number;
  /** Pids of live children that Node's child_process spawned (never waited for by us). */
  ownedPids(): Set<number>;
}

const CHILD_PROCESS_CHANNEL = 'child_process';

/**
 * Reaps orphans reparented to us without stealing the exit status of Node's own children.
 *
 * libuv waits for each pid it spawned; a blind waitpid(-1) would reap those first and their
 * ChildProcess would never emit 'exit'. So we only wait for pids we see in our children lists
 * that child_process did not spawn. child_process publishes every ChildProcess on the
 * `child_process` diagnostics channel from its constructor (before `.pid` exists), so we keep
 * the objects and read `.pid` at scan time.
 *
 * Start it before anything is spawned: a child spawned earlier is unknown to us and would be
 * waited for here. Children spawned from worker threads are published on the worker's own
 * channel and are not seen either: spawn from the main thread only.
 */
export function createReaper(options: ReaperOptions): Reaper {
  const log = options.log;
  const procRoot = options.procRoot ?? '/proc';
  // SIGCHLD drives the scans; the timer is only a safety net for a signal that coalesced or was
  // missed, so an idle pilot opens no /proc files between them.
  const intervalMs = options.intervalMs ?? 60_000;
  const isPid1 = options.isPid1 ?? process.pid === 1;
  const selfPid = options.selfPid ?? process.pid;
  const proc = options.proc ?? process;

  const owned = new Set<ChildProcess>();
  let libc: Libc | null = null;
  let started: ReaperStart | null = null;
  let timer: NodeJS.Timeout | null = null;
  let immediate: NodeJS.Immediate | null = null;
  let useChildrenFiles: boolean | null = null;
  let lastScanError: string | null = null;

  const onChildProcess = (message: unknown): void => {
    const child = (message as { process?: ChildProcess }).process;
    if (!child) return;
    owned.add(child);
    // 'exit' after libuv reaped it; 'close' also covers spawn failures, which never emit 'exit'.
    const drop = (): void => void owned.delete(child);
    child.once('exit', drop);
    child.once('close', drop);
  };

  // Defer the scan: libuv's own SIGCHLD watcher reaps its children in the same poll phase, and
  // many SIGCHLDs (200 orphans dying) collapse into one scan.
  const onSigchld = (): void => {
    if (immediate !== null) return;
    immediate = setImmediate(() => {
      immediate = null;
      safeReap();
    });
  };

  function ownedPids(): Set<number> {
    const pids = new Set<number>();
    for (const child of owned) {
      if (child.exitCode !== null || child.signalCode !== null) owned.delete(child);
      else if (child.pid !== undefined) pids.add(child.pid);
    }
    return pids;
  }

  /** Our direct children, from every thread: orphans are reparented to any live thread of the reaper. */
  function childPids(): number[] {
    if (useChildrenFiles === null) {
      // /proc/<tid>/children needs CONFIG_PROC_CHILDREN; the main thread's tid is our pid.
      useChildrenFiles = readOrNull(`${procRoot}/self/task/${readSelfTid()}/children`) !== null;
      if (!useChildrenFiles) log.debug({ procRoot }, 'no /proc/self/task/*/children: scanning /proc/*/stat instead');
    }
    return useChildrenFiles ? childrenFromTasks() : childrenFromStat();
  }

  function readSelfTid(): string {
    const tids = readdirSync(`${procRoot}/self/task`);
    return tids.includes(String(selfPid)) ? String(selfPid) : (tids[0] ?? String(selfPid));
  }

  function childrenFromTasks(): number[] {
    const pids: number[] = [];
    for (const tid of readdirSync(`${procRoot}/self/task`)) {
      const text = readOrNull(`${procRoot}/self/task/${tid}/children`); // null: the thread ended meanwhile
      if (text === null) continue;
      for (const word of text.split(/\s+/)) if (word !== '') pids.push(Number(word));
    }
    return pids;
  }

  function childrenFromStat(): number[] {
    const pids: number[] = [];
    for (const name of readdirSync(procRoot)) {
      if (!/^\d+$/.test(name)) continue;
      const stat = readOrNull(`${procRoot}/${name}/stat`);
      if (stat !== null && parseStat(stat)?.ppid === selfPid) pids.push(Number(name));
    }
    return pids;
  }

  function reapNow(): number {
    if (libc === null) return 0;
    const skip = ownedPids();
    let reaped = 0;
    for (const pid of childPids()) {
      if (skip.has(pid) || !Number.isInteger(pid) || pid <= 0) continue;
      const result = libc.waitpidNoHang(pid);
      // null: still running; 'ECHILD': gone meanwhile (or someone else's).
      if (result === null || result === 'ECHILD') continue;
      reaped++;
      log.debug({ pid: result.pid, code: result.code, signal: result.signal }, 'reaped orphan');
    }
    return reaped;
  }

  function safeReap(): void {
    try {
      reapNow();
      lastScanError = null;
    } catch (err) {
      // PID 1 must not die of a failed scan; the next SIGCHLD or tick tries again. Log each
      // distinct failure once, not every second.
      const message = describeError(err);
      if (message !== lastScanError) log.warn({ err: message }, 'orphan reaping scan failed');
      lastScanError = message;
    }
  }

  function bindLibc(): Libc | null {
    const source = options.libc ?? loadLibc;
    if (typeof source !== 'function') return source;
    try {
      return source();
    } catch (err) {
      log.warn({ err: describeError(err), cause: describeError((err as Error).cause) }, 'cannot load libc');
      return null;
    }
  }

  return {
    start() {
      if (started) return started;
      libc = bindLibc();
      let mode: ReaperMode = 'none';
      if (isPid1) mode = 'pid1';
      else if (libc?.setChildSubreaper()) mode = 'subreaper';
      started = { mode, reaping: libc !== null && mode !== 'none' };
      if (!started.reaping) {
        log.warn(
          { mode, isPid1 },
          isPid1
            ? 'running as PID 1 without a libc binding: orphaned processes cannot be reaped and zombies will accumulate'
            : 'neither PID 1 nor a child subreaper: orphans of HAProxy and helper programs go to the outer init; ' +
                'if that init does not reap (a container without --init), zombies accumulate',
        );
        return started;
      }
      diagnosticsChannel.subscribe(CHILD_PROCESS_CHANNEL, onChildProcess);
      proc.on('SIGCHLD', onSigchld);
      timer = setInterval(safeReap, intervalMs);
      timer.unref();
      log.debug({ mode }, 'reaper started');
      return started;
    },
    stop() {
      if (!started?.reaping) return;
      proc.off('SIGCHLD', onSigchld);
      diagnosticsChannel.unsubscribe(CHILD_PROCESS_CHANNEL, onChildProcess);
      if (timer !== null) clearInterval(timer);
      if (immediate !== null) clearImmediate(immediate);
      timer = null;
      immediate = null;
      started = null;
      owned.clear();
    },
    reapNow,
    ownedPids,
  };
}

/** State and parent pid from /proc/<pid>/stat; the comm field may hold spaces and parentheses. */
export function parseStat(stat: string): { state: string; ppid: number } | null {
  const end = stat.lastIndexOf(')');
  if (end < 0) return null;
  const fields = stat.slice(end + 2).split(' ');
  const state = fields[0];
  const ppid = Number(fields[1]);
  return state && Number.isInteger(ppid) ? { state, ppid } : null;
}

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return null;
  }
}
