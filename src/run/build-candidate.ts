/**
 * From configuration and the sources' latest snapshots to the text HAProxy should run.
 * Two modes: HAPROXY_CONFIG runs the operator's file as it is (with `program` sections lifted
 * out, see supervise/program-sections.ts); otherwise the templates are rendered.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { PilotConfig, ProgramSpec } from '../config/types.js';
import type { Snapshot } from '../sources/source.js';
import type { DiscoveredBackend } from '../state/model.js';
import type { Candidate } from '../pilot.js';
import { PilotError } from '../errors.js';
import { validName } from '../state/validate.js';
import { writeAtomic } from '../apply/write.js';
import { liftProgramSections } from '../supervise/program-sections.js';
import { loadTemplates, renderConfig } from '../render/render.js';

export interface BuildContext {
  config: PilotConfig;
  statsPassword?: string;
  hasPrometheus: boolean;
  demo?: { port: number; backendPort: number };
  /** false for `render`/`check`: no certificate files are written. */
  writeFiles?: boolean;
}

export interface Built extends Candidate {
  /** Programs lifted from the operator's config (HAPROXY_CONFIG mode). */
  liftedPrograms: ProgramSpec[];
}

/** Read the operator's config and lift its program sections. */
export async function buildFromUserConfig(path: string): Promise<Built> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PilotError('E_CONFIG', `HAPROXY_CONFIG: cannot read ${path}`, { cause: err });
  }
  const lifted = liftProgramSections(text, path);
  return { text: lifted.config, backends: [], liftedPrograms: lifted.programs };
}

/**
 * Merge the sources: raw keys into one map (keys are absolute, each source under its own
 * prefix), backends into one list with unique names (a clash is renamed `<source>_<name>`).
 */
export function mergeSnapshots(snapshots: Iterable<Snapshot>): { keys: Record<string, string>; backends: DiscoveredBackend[]; files: Record<string, string> } {
  const keys: Record<string, string> = {};
  const backends: DiscoveredBackend[] = [];
  const files: Record<string, string> = {};
  const names = new Set<string>();
  for (const snap of [...snapshots].sort((a, b) => a.source.localeCompare(b.source))) {
    Object.assign(keys, snap.keys);
    Object.assign(files, snap.files ?? {});
    for (const backend of snap.backends) {
      const name = names.has(backend.name) ? `${snap.source}_${backend.name}` : backend.name;
      names.add(name);
      backends.push(name === backend.name ? backend : { ...backend, name });
    }
  }
  return { keys, backends, files };
}

/**
 * Certificates from the stores go to <runDir>/certs, readable by the container user only; files
 * no source provides any more are removed. Names are file names chosen by the sources (`<name>.pem`).
 */
async function writeCerts(dir: string, files: Record<string, string>): Promise<string | undefined> {
  const names = Object.keys(files);
  for (const name of names) validName(`certificate file name`, name);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const wanted = new Set(names);
  for (const old of await readdir(dir)) if (!wanted.has(old)) await rm(join(dir, old), { force: true });
  if (names.length === 0) return undefined;
  for (const name of names) await writeAtomic(join(dir, name), files[name]!, { mode: 0o600 });
  return dir;
}

export function createCandidateBuilder(context: BuildContext) {
  let templates = loadTemplates(context.config.templatesDir);
  return {
    /** Re-read templates (SIGHUP, POST /reload); a broken template throws and keeps the previous ones. */
    reloadTemplates(dir: string | undefined): void {
      templates = loadTemplates(dir);
    },
    async build(snapshots: ReadonlyMap<string, Snapshot>): Promise<Built> {
      const { config } = context;
      if (config.haproxy.userConfig) return buildFromUserConfig(config.haproxy.userConfig);
      const merged = mergeSnapshots(snapshots.values());
      const dir = join(config.haproxy.runDir, 'certs');
      const hasCerts = Object.keys(merged.files).length > 0;
      const certsDir = context.writeFiles === false ? (hasCerts ? dir : undefined) : await writeCerts(dir, merged.files);
      const text = renderConfig(templates, {
        config,
        backends: merged.backends,
        keys: merged.keys,
        statsPassword: context.statsPassword,
        certsDir,
        hasPrometheus: context.hasPrometheus,
        demo: context.demo,
      });
      return { text, backends: merged.backends, liftedPrograms: [] };
    },
  };
}
