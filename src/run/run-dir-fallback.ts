/**
 * Without root, /run/haproxy-pilot (PILOT_RUN_DIR's default) usually cannot be created. When
 * PILOT_RUN_DIR is not set, use a per-user directory instead: $XDG_RUNTIME_DIR/haproxy-pilot
 * (a tmpfs only this user can write, made by systemd-logind), else <tmpdir>/haproxy-pilot-<uid>.
 * Nothing is created here (render and check must not write): run.ts creates the directory.
 */
import { accessSync, constants, lstatSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';

export interface RunDirProbe {
  env: Readonly<Record<string, string | undefined>>;
  uid: number;
  /** Whether `path` is (or could be created as) a directory this user can write. */
  writable(path: string): boolean;
  /** When `path` exists: whether it is a real directory owned by this user that nobody else can write. */
  ownedPrivateDir(path: string): boolean | 'missing';
  tmp: string;
}

export function defaultRunDirProbe(env: Readonly<Record<string, string | undefined>>): RunDirProbe {
  const uid = process.getuid?.() ?? 0;
  return { env, uid, writable: canWrite, ownedPrivateDir: (p) => ownedPrivate(p, uid), tmp: tmpdir() };
}

/** The directory to use instead of `defaultDir`, or undefined when `defaultDir` is usable (or nothing better is). */
export function runDirFallback(defaultDir: string, probe: RunDirProbe): string | undefined {
  if (probe.writable(defaultDir)) return undefined;
  const xdg = probe.env.XDG_RUNTIME_DIR;
  if (xdg && xdg.startsWith('/') && probe.writable(xdg)) return join(xdg, 'haproxy-pilot');
  // A shared /tmp: a directory someone else made (or a symlink) must not be used.
  const mine = join(probe.tmp, `haproxy-pilot-${probe.uid}`);
  const state = probe.ownedPrivateDir(mine);
  if (state === true || (state === 'missing' && probe.writable(probe.tmp))) return mine;
  return undefined;
}

function canWrite(path: string): boolean {
  let p = path;
  for (;;) {
    try {
      accessSync(p, constants.W_OK | constants.X_OK);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') return false;
    }
    const parent = dirname(p);
    if (parent === p) return false;
    p = parent;
  }
}

function ownedPrivate(path: string, uid: number): boolean | 'missing' {
  try {
    const st = lstatSync(path);
    return st.isDirectory() && st.uid === uid && (st.mode & 0o022) === 0;
  } catch {
    return 'missing';
  }
}
