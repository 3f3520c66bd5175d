/**
 * Everything HAProxy reads for one config lives in one folder, a *generation*:
 *
 *   <runDir>/gen/<n>/haproxy.cfg   the config
 *   <runDir>/gen/<n>/certs/…       certificates (and later maps), referenced *relatively*
 *   <runDir>/live -> gen/<n>       the generation HAProxy runs
 *   <runDir>/haproxy.cfg -> live/haproxy.cfg   for operators (`cat`, `haproxy -c`)
 *   <runDir>/rejected/             the last candidate that was refused, whole
 *
 * HAProxy runs with `-C <runDir>/live`: the master re-executes itself on every reload and
 * chdirs again, through the symlink, so a reload reads exactly one generation (measured on
 * 2.6.12: /proc/<master>/cwd follows the swapped symlink). A candidate is staged in a folder of
 * its own, checked there (`haproxy -c -C <stage>`), and becomes live by one rename of a symlink;
 * a rejected candidate never touches a file the running config reads.
 */
import { mkdir, readFile, readdir, readlink, rename, rm, symlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fsyncDir, writeAtomic } from './write.js';

export interface StagedFiles {
  /** haproxy.cfg */
  text: string;
  /** Other files HAProxy reads, by path relative to the generation (`certs/site.pem`). */
  files: Readonly<Record<string, string>>;
}

export interface Stage {
  /** The folder holding the staged set (check with `-C <dir> -f <dir>/haproxy.cfg`). */
  dir: string;
  configPath: string;
}

export interface Generations {
  /** `<runDir>/live`: HAProxy's `-C` folder. */
  readonly liveDir: string;
  /** `<runDir>/live/haproxy.cfg`: HAProxy's `-f`. */
  readonly liveConfig: string;
  /** The folder the rejected candidate is kept in. */
  readonly rejectedDir: string;
  /** Writes a candidate into a new folder, fsynced. */
  stage(set: StagedFiles): Promise<Stage>;
  /** Makes a staged folder live (one symlink rename); `undo` makes the previous one live again. */
  install(stage: Stage): Promise<{ installed: Stage; undo(): Promise<void> }>;
  /** Removes a staged folder that was only checked. */
  discard(stage: Stage): Promise<void>;
  /** Keeps a refused candidate whole in rejectedDir (replacing the previous one). */
  reject(stage: Stage): Promise<string>;
  /** Rewrites the live config in place (runtime changes: the file mirrors what runs). */
  rewriteLive(text: string): Promise<void>;
  /** The live config text, if there is one. */
  liveText(): Promise<string | undefined>;
  /**
   * The config of the generation that was live before the last install, as it was last written
   * (runtime changes included): what HAProxy runs until the reload that follows the install.
   */
  previousText(): Promise<string | undefined>;
  /** Removes generations other than the live one and the one before it. */
  prune(): Promise<void>;
}

const FILE_MODE = 0o600;

export function createGenerations(runDir: string): Generations {
  const genDir = join(runDir, 'gen');
  const liveDir = join(runDir, 'live');
  const liveConfig = join(liveDir, 'haproxy.cfg');
  const rejectedDir = join(runDir, 'rejected');
  let seq = 0;
  let previous: string | undefined;

  async function liveTarget(): Promise<string | undefined> {
    try {
      return await readlink(liveDir);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw err;
    }
  }

  /** Points `link` at `target` atomically: a new symlink renamed over the old one. */
  async function swapLink(link: string, target: string): Promise<void> {
    const tmp = `${link}.tmp-${process.pid}`;
    await rm(tmp, { force: true });
    await symlink(target, tmp);
    await rename(tmp, link);
    await fsyncDir(dirname(link));
  }

  async function nextSeq(): Promise<number> {
    if (seq === 0) {
      // Continue after what an earlier run left, so a name is never reused while HAProxy may read it.
      const names = await readdir(genDir).catch(() => [] as string[]);
      seq = Math.max(0, ...names.map((n) => Number.parseInt(n, 10)).filter(Number.isFinite));
    }
    return ++seq;
  }

  return {
    liveDir,
    liveConfig,
    rejectedDir,

    async stage(set) {
      await mkdir(genDir, { recursive: true, mode: 0o750 });
      const dir = join(genDir, `${await nextSeq()}.staging`);
      await rm(dir, { recursive: true, force: true });
      await mkdir(dir, { mode: 0o750 });
      // Certificates hold private keys: readable by the container user only.
      const dirs = new Set(Object.keys(set.files).map((f) => dirname(join(dir, f))));
      for (const d of dirs) await mkdir(d, { recursive: true, mode: 0o700 });
      await Promise.all(Object.entries(set.files).map(([name, data]) => writeAtomic(join(dir, name), data, { mode: FILE_MODE, fsyncDir: false })));
      for (const d of dirs) if (d !== dir) await fsyncDir(d);
      await writeAtomic(join(dir, 'haproxy.cfg'), set.text, { mode: 0o644 });
      return { dir, configPath: join(dir, 'haproxy.cfg') };
    },

    async install(stage) {
      const final = stage.dir.replace(/\.staging$/, '');
      await rename(stage.dir, final);
      const before = await liveTarget();
      await swapLink(liveDir, join('gen', final.slice(genDir.length + 1)));
      // Operators look for <runDir>/haproxy.cfg; it always shows what runs.
      await swapLink(join(runDir, 'haproxy.cfg'), join('live', 'haproxy.cfg'));
      previous = before;
      return {
        installed: { dir: final, configPath: join(final, 'haproxy.cfg') },
        undo: async () => {
          if (before) await swapLink(liveDir, before);
          previous = undefined;
        },
      };
    },

    async discard(stage) {
      await rm(stage.dir, { recursive: true, force: true });
    },

    async reject(stage) {
      await rm(rejectedDir, { recursive: true, force: true });
      await rename(stage.dir, rejectedDir);
      return rejectedDir;
    },

    async rewriteLive(text) {
      const target = await liveTarget();
      if (!target) throw new Error(`${liveDir} does not exist`);
      await writeAtomic(join(runDir, target, 'haproxy.cfg'), text, { mode: 0o644 });
    },

    async liveText() {
      try {
        return await readFile(liveConfig, 'utf8');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
        throw err;
      }
    },

    async previousText() {
      if (previous === undefined) return undefined;
      return readFile(join(runDir, previous, 'haproxy.cfg'), 'utf8').catch(() => undefined);
    },

    async prune() {
      const live = await liveTarget();
      const keep = new Set([live, previous].filter((x): x is string => x !== undefined).map((t) => t.replace(/^gen\//, '')));
      for (const name of await readdir(genDir).catch(() => [] as string[])) {
        if (!keep.has(name)) await rm(join(genDir, name), { recursive: true, force: true });
      }
    },
  };
}
