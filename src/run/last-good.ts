/**
 * Last good across a restart. While it runs, haproxy-pilot keeps every failing source's last good
 * data; a restart forgets it. When a pilot starts while its stores are down, building the first
 * config from empty snapshots would serve no discovered backend at all. So, at start:
 *
 *   - no configured source answered within the first-answer wait, and
 *   - the run dir holds the generation the previous run applied (<runDir>/live: haproxy.cfg and
 *     the files it reads), made with the same settings (a fingerprint kept beside it), and
 *   - `haproxy -c` still accepts it
 *
 * → that generation is installed again as the first config, instead of the empty one. /health
 * says so until a source answers, and a pass that would replace it with a config built without
 * any source's data (SIGHUP, POST /reload) is held back until then. The first snapshot ends it:
 * from there on, the loop builds from the sources as usual.
 *
 * The fingerprint (<runDir>/settings.sha256) is the hash of the config the settings render with
 * no discovered data, and of the source settings (without secrets): a restart with other settings
 * (another HAPROXY_ID, other templates, another port) never serves the previous run's config.
 */
import { createHash } from 'node:crypto';
import { readFile, readdir, readlink, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { Logger } from '../log.js';
import type { Candidate } from '../candidate.js';
import type { ConfiguredSource } from '../sources/kind.js';
import type { SourceStatus } from '../state/model.js';
import { installFirst, type CheckDeps } from '../apply/transaction.js';
import { writeAtomic } from '../apply/write.js';
import { describeError } from '../errors.js';

export const FINGERPRINT_FILE = 'settings.sha256';

export interface LastGoodOptions {
  runDir: string;
  configured: readonly ConfiguredSource[];
  /** HAPROXY_CONFIG: the operator's file is the config, whatever the sources say. */
  userConfig?: string;
  log: Logger;
}

/** What the previous run left in <runDir>/live. */
export interface PreviousGeneration {
  /** `<runDir>/gen/<n>`: the folder `live` pointed at. */
  dir: string;
  text: string;
  files: Record<string, string>;
  /** When its haproxy.cfg was last written (the last apply, runtime ones included). */
  appliedAt: Date;
}

export interface LastGood {
  /**
   * Installs the first config: the previous run's generation when no source answered and it may
   * be used, else `built` (the config from the sources' snapshots, empty or not).
   */
  installFirst(deps: CheckDeps, built: Candidate, sources: readonly SourceStatus[], withoutData: () => Promise<Candidate>): Promise<Candidate>;
  /** Whether the pilot serves the previous run's config and no source has answered since. */
  active(snapshots: number): boolean;
  /** The /health line while active. */
  notice(snapshots: number): string | undefined;
  /** A pass result that holds back a pass while active (nothing to build from yet), or undefined. */
  hold(snapshots: number): { ok: false; kind: 'none'; error: { code: string; message: string } } | undefined;
}

const SECRET_KEY = /pass|token|secret|key$/i;

/** The source settings without secrets (a fingerprint must not let anyone test password guesses). */
function publicSettings(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(publicSettings);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value as Record<string, unknown>).sort(([a], [b]) => a.localeCompare(b))) {
    if (!SECRET_KEY.test(k)) out[k] = publicSettings(v);
  }
  return out;
}

/** The settings a generation was made with: the render without discovered data, and the sources' settings. */
export function settingsFingerprint(empty: Pick<Candidate, 'text' | 'files'>, configured: readonly ConfiguredSource[]): string {
  const h = createHash('sha256').update(empty.text);
  for (const name of Object.keys(empty.files).sort()) h.update(`\0${name}\0`).update(empty.files[name]!);
  h.update('\0sources\0').update(JSON.stringify(configured.map((c) => ({ kind: c.kind, settings: publicSettings(c.settings) }))));
  return h.digest('hex');
}

async function readTree(root: string, dir = root, out: Record<string, string> = {}): Promise<Record<string, string>> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await readTree(root, path, out);
    else if (entry.isFile() && !(dir === root && entry.name === 'haproxy.cfg') && !entry.name.startsWith('.')) out[relative(root, path)] = await readFile(path, 'utf8');
  }
  return out;
}

/** The generation <runDir>/live points at, or undefined when there is none (a first start). */
export async function readPreviousGeneration(runDir: string): Promise<PreviousGeneration | undefined> {
  let target: string;
  try {
    target = await readlink(join(runDir, 'live'));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  const dir = join(runDir, target);
  const config = join(dir, 'haproxy.cfg');
  let text: string;
  try {
    text = await readFile(config, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
  return { dir, text, files: await readTree(dir), appliedAt: (await stat(config)).mtime };
}

async function readFingerprint(runDir: string): Promise<string | undefined> {
  return readFile(join(runDir, FINGERPRINT_FILE), 'utf8').then((t) => t.trim(), () => undefined);
}

export function createLastGood(options: LastGoodOptions): LastGood {
  const { runDir, configured, log } = options;
  let serving: { previous: PreviousGeneration; silent: string[] } | undefined;
  let answered = false;

  const isActive = (snapshots: number): boolean => {
    if (serving && snapshots > 0) answered = true;
    return serving !== undefined && !answered;
  };
  const notice = (): string | undefined => {
    if (!serving) return undefined;
    const who = serving.silent.map((s) => `source ${s}`).join(', ');
    return `serving the last applied config from ${join(serving.previous.dir, 'haproxy.cfg')} (applied ${serving.previous.appliedAt.toISOString()}): ${who} ${serving.silent.length > 1 ? 'have' : 'has'} not answered since start`;
  };

  /** Why the previous generation may not be used, or undefined when it may. */
  async function refusal(built: Candidate, sources: readonly SourceStatus[], fingerprint: string): Promise<{ why: string } | { previous: PreviousGeneration }> {
    if (options.userConfig) return { why: 'HAPROXY_CONFIG is the config' };
    if (configured.length === 0) return { why: 'no source is configured' };
    if (sources.some((s) => s.lastSuccessAt !== undefined)) return { why: 'a source answered' };
    const previous = await readPreviousGeneration(runDir);
    if (!previous) return { why: `${join(runDir, 'live')} holds no earlier generation` };
    const kept = await readFingerprint(runDir);
    if (kept === undefined) return { why: `${join(runDir, FINGERPRINT_FILE)} is missing (the earlier generation's settings are unknown)` };
    if (kept !== fingerprint) return { why: `${join(runDir, 'live')} was made with other settings` };
    if (previous.text === built.text) return { why: 'the earlier generation has no discovered data either' };
    return { previous };
  }

  return {
    async installFirst(deps, built, sources, withoutData) {
      const fingerprint = settingsFingerprint(configured.length > 0 ? await withoutData() : built, configured);
      const verdict = await refusal(built, sources, fingerprint).catch((err: unknown) => ({ why: `the earlier generation cannot be read: ${describeError(err)}` }));
      let first = built;
      if ('previous' in verdict) {
        const { previous } = verdict;
        const silent = sources.filter((s) => s.lastSuccessAt === undefined).map((s) => s.name);
        // Backends are not known (they live in the file only): the first snapshot plans a reload.
        const candidate: Candidate = { ...built, text: previous.text, files: previous.files, backends: [] };
        try {
          await installFirst(deps, candidate);
          first = candidate;
          serving = { previous, silent };
          log.warn({ from: previous.dir, appliedAt: previous.appliedAt.toISOString(), sources: silent }, notice()!);
        } catch (err) {
          log.warn({ from: previous.dir, err }, `the last applied config cannot be served again (${describeError(err)}): starting without discovered data`);
        }
      } else if (configured.length > 0 && !sources.some((s) => s.lastSuccessAt !== undefined)) {
        log.warn(`no source answered at start and ${verdict.why}: starting without discovered data`);
      }
      if (first === built) await installFirst(deps, built);
      // The settings the live generation is made with, for the next start (a SIGHUP that changes
      // them makes the next start refuse this generation: the safe side).
      if (configured.length > 0) await writeAtomic(join(runDir, FINGERPRINT_FILE), `${fingerprint}\n`, { mode: 0o600 });
      return first;
    },
    active: isActive,
    notice: (snapshots) => (isActive(snapshots) ? notice() : undefined),
    hold(snapshots) {
      if (!isActive(snapshots)) return undefined;
      return {
        ok: false,
        kind: 'none',
        error: { code: 'E_SOURCE', message: `held back: ${notice()}, and a config built now would have none of its data; the last applied one stays until a source answers` },
      };
    },
  };
}
