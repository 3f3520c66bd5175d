/**
 * Client for HAProxy's master CLI (the unix socket given with `-S`).
 *
 * Measured on 2.6.12 and 3.0.11: the master writes its answer but keeps the connection open
 * until the client half-closes its side. So we send `<command>\n` and `end()` the socket at
 * once (what `echo cmd | socat - unix:…` does); the master then answers and closes, and the
 * whole answer is what arrived before the close.
 *
 * `reload` differs by version: 2.7+ keeps the connection across the master's re-exec and answers
 * `Success=1|0\n--\n<startup log>`; 2.6 closes the connection with an empty answer as the
 * master re-execs (confirm through `show proc` instead).
 */
import net from 'node:net';
import { PilotError } from '../errors.js';

export interface MasterCommandOptions {
  /** Give up (and destroy the socket) after this long. Default 5000 ms. */
  timeoutMs?: number;
  /** A script of several lines (runtimeBatch); single commands never carry a line break. */
  allowNewlines?: boolean;
}

export const DEFAULT_MASTER_CLI_TIMEOUT_MS = 5000;

/** The shape of masterCommand, so callers can inject a fake transport. */
export type MasterCommandFn = (socketPath: string, command: string, options?: MasterCommandOptions) => Promise<string>;

/** Send one command to the master CLI and return the full answer text. */
export function masterCommand(
  socketPath: string,
  command: string,
  options: MasterCommandOptions = {},
): Promise<string> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_MASTER_CLI_TIMEOUT_MS;
  // A newline would smuggle a second command into the session.
  if (!options.allowNewlines && /[\r\n]/.test(command)) {
    return Promise.reject(
      new PilotError('E_MASTER_CLI', `master CLI ${socketPath}: command contains a line break: ${JSON.stringify(command)}`),
    );
  }
  return new Promise<string>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let settled = false;
    const socket = net.createConnection({ path: socketPath });
    const timer = setTimeout(() => {
      fail(new Error(`no complete answer within ${timeoutMs} ms`));
      socket.destroy();
    }, timeoutMs);
    function fail(cause: unknown): void {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const reason = cause instanceof Error ? cause.message : String(cause);
      reject(
        new PilotError('E_MASTER_CLI', `master CLI ${socketPath}: "${command}": ${reason}`, {
          cause,
          details: { socketPath, command },
        }),
      );
    }
    socket.on('connect', () => {
      socket.end(`${command}\n`);
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', (err) => fail(err));
    socket.on('close', (hadError) => {
      if (settled) return;
      if (hadError) return; // 'error' already rejected
      settled = true;
      clearTimeout(timer);
      resolve(Buffer.concat(chunks).toString('utf8'));
    });
  });
}

export interface ProcEntry {
  pid: number;
  /** `worker`, or the program's name in the programs sections. */
  type: string;
  /** For workers: how many reloads this process has survived (0 for a fresh worker). */
  reloads: number;
  uptime?: string;
  version?: string;
}

export interface ShowProc {
  master: { pid: number; reloads: number; failedReloads?: number; uptime?: string; version?: string };
  workers: ProcEntry[];
  oldWorkers: ProcEntry[];
  programs: ProcEntry[];
  oldPrograms: ProcEntry[];
}

type Section = 'head' | 'workers' | 'oldWorkers' | 'programs' | 'oldPrograms' | 'other';

/**
 * Parse `show proc`. 2.6–3.0 print `#<PID> <type> <reloads> <uptime> <version>` with the master
 * line's reloads as `N [failed: M]`; 2.0–2.4 have an extra `<relative PID>` column (old workers
 * show `[was: N]` there). Sections: `# workers`, `# old workers`, `# programs`, `# old programs`.
 * Unknown sections and lines are ignored so later formats degrade instead of failing.
 */
export function parseShowProc(text: string): ShowProc {
  const lines = text.split(/\r?\n/);
  let section: Section = 'head';
  let hasRelative = false;
  let master: ShowProc['master'] | undefined;
  const out: Omit<ShowProc, 'master'> = { workers: [], oldWorkers: [], programs: [], oldPrograms: [] };
  for (const raw of lines) {
    const line = raw.trim();
    if (line === '') continue;
    if (line.startsWith('#')) {
      const title = line.slice(1).trim().toLowerCase();
      if (title.startsWith('<pid>')) {
        hasRelative = title.includes('<relative');
        section = 'head';
      } else if (title === 'workers') section = 'workers';
      else if (title === 'old workers') section = 'oldWorkers';
      else if (title === 'programs') section = 'programs';
      else if (title === 'old programs') section = 'oldPrograms';
      else section = 'other';
      continue;
    }
    const entry = parseProcLine(line, hasRelative);
    if (!entry) continue;
    if (section === 'head' && entry.type === 'master') {
      master = {
        pid: entry.pid,
        reloads: entry.reloads,
        ...(entry.failed !== undefined ? { failedReloads: entry.failed } : {}),
        ...(entry.uptime !== undefined ? { uptime: entry.uptime } : {}),
        ...(entry.version !== undefined ? { version: entry.version } : {}),
      };
      continue;
    }
    const { failed: _failed, ...proc } = entry;
    if (section === 'workers') out.workers.push(proc);
    else if (section === 'oldWorkers') out.oldWorkers.push(proc);
    else if (section === 'programs') out.programs.push(proc);
    else if (section === 'oldPrograms') out.oldPrograms.push(proc);
  }
  if (!master) {
    throw new PilotError('E_MASTER_CLI', `show proc: no master line in answer: ${JSON.stringify(text.slice(0, 200))}`);
  }
  return { master, ...out };
}

function parseProcLine(line: string, hasRelative: boolean): (ProcEntry & { failed?: number }) | undefined {
  // Collapse the bracketed fields that contain spaces before splitting on whitespace.
  const failedMatch = /\[failed:\s*(\d+)\]/.exec(line);
  const cleaned = line.replace(/\[failed:\s*\d+\]/, ' ').replace(/\[was:\s*\d+\]/, '-');
  const words = cleaned.split(/\s+/).filter((w) => w !== '');
  const pid = Number(words[0]);
  const type = words[1];
  if (!Number.isInteger(pid) || pid <= 0 || type === undefined) return undefined;
  let i = 2;
  if (hasRelative) i++;
  const reloads = Number(words[i]);
  if (!Number.isInteger(reloads)) return undefined;
  const uptime = words[i + 1];
  const version = words[i + 2];
  return {
    pid,
    type,
    reloads,
    ...(uptime !== undefined ? { uptime } : {}),
    ...(version !== undefined && version !== '-' ? { version } : {}),
    ...(failedMatch?.[1] !== undefined ? { failed: Number(failedMatch[1]) } : {}),
  };
}

/** `show proc` through the master CLI, parsed. */
export async function showProc(socketPath: string, options: MasterCommandOptions = {}): Promise<ShowProc> {
  return parseShowProc(await masterCommand(socketPath, 'show proc', options));
}

export interface ReloadAnswer {
  /** true/false from 2.7+'s `Success=1|0`; undefined when the answer has none (2.6 closes). */
  success: boolean | undefined;
  /** The startup log the master appends after `--` (2.7+). */
  startupLog: string;
}

/** Parse the answer to the master CLI `reload` command. */
export function parseReloadAnswer(text: string): ReloadAnswer {
  const m = /^\s*Success=([01])\s*$/m.exec(text);
  const sep = text.indexOf('\n--\n');
  const startupLog = sep >= 0 ? text.slice(sep + 4).trim() : m ? '' : text.trim();
  return { success: m ? m[1] === '1' : undefined, startupLog };
}

/**
 * A runtime API command for the current worker, sent through the master with the `@1` prefix
 * (relative pid 1 is always the newest worker).
 */
export async function runtimeCommand(
  socketPath: string,
  command: string,
  options: MasterCommandOptions & { command?: MasterCommandFn } = {},
): Promise<string> {
  const { command: send = masterCommand, ...sendOptions } = options;
  const answer = await send(socketPath, `@1 ${command}`, sendOptions);
  // The master answers this instead of forwarding when no worker runs (e.g. mid-restart).
  if (/^Can't find the target PID/m.test(answer)) {
    throw new PilotError('E_MASTER_CLI', `master CLI ${socketPath}: "@1 ${command}": ${answer.trim()}`, {
      details: { socketPath, command },
    });
  }
  return answer;
}

export interface HaproxyVersion {
  major: number;
  minor: number;
  patch?: number;
}

/** `2.6.12-1+deb12u4` → {2,6,12}; `3.1-dev4` → {3,1}. */
export function parseHaproxyVersion(text: string): HaproxyVersion | undefined {
  const m = /(\d+)\.(\d+)(?:\.(\d+))?/.exec(text);
  if (!m) return undefined;
  return { major: Number(m[1]), minor: Number(m[2]), ...(m[3] !== undefined ? { patch: Number(m[3]) } : {}) };
}

/** 2.7 added the synchronous `reload` answer (`Success=1|0`) on the master CLI. */
export function hasCliReloadStatus(version: HaproxyVersion | undefined): boolean {
  if (!version) return false;
  return version.major > 2 || (version.major === 2 && version.minor >= 7);
}
