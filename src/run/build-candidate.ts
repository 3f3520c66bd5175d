/**
 * From configuration and the sources' latest snapshots to the text HAProxy should run.
 * Two modes: HAPROXY_CONFIG runs the operator's file as it is (with `program` sections lifted
 * out, see supervise/program-sections.ts); otherwise the templates are rendered.
 */
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { PilotConfig, ProgramSpec } from '../config/types.js';
import type { Snapshot } from '../sources/source.js';
import type { DiscoveredBackend } from '../state/model.js';
import type { Candidate } from '../pilot.js';
import { PilotError } from '../errors.js';
import { validName } from '../state/validate.js';
import { writeAtomic } from '../apply/write.js';
import { liftProgramSections } from '../supervise/program-sections.js';
import { loadTemplates, renderConfig } from '../render/render.js';
import { DEFAULT_FRONTEND_PORT } from '../render/view.js';

export interface BuildContext {
  config: PilotConfig;
  statsPassword?: string;
  hasPrometheus: boolean;
  demo?: { port: number; backendPort: number };
  /** false for `render`/`check`: no certificate files are written. */
  writeFiles?: boolean;
  log: Logger;
}

export interface Built extends Candidate {
  /** Programs lifted from the operator's config (HAPROXY_CONFIG mode), and what was dropped from them. */
  liftedPrograms: ProgramSpec[];
  liftWarnings: string[];
}

/** Read the operator's config and lift its program sections (expanding "${VAR}" as HAProxy would). */
export async function buildFromUserConfig(path: string, env: Readonly<Record<string, string>>): Promise<Built> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PilotError('E_CONFIG', `HAPROXY_CONFIG: cannot read ${path}`, { cause: err });
  }
  const lifted = liftProgramSections(text, path, env);
  return { text: lifted.config, backends: [], liftedPrograms: lifted.programs, liftWarnings: lifted.warnings };
}

/** Proxy names and listening ports the template uses itself, which discovery may not take. */
function reserved(config: PilotConfig, demo: BuildContext['demo']) {
  const names = new Set(['stats', 'fe_http', 'fe_default', 'demo', 'demo_backend', ...config.services.map((s) => s.name)]);
  const ports = new Set([80, 443, DEFAULT_FRONTEND_PORT, ...config.services.map((s) => s.bind.port)]);
  if (config.stats.port > 0) ports.add(config.stats.port);
  if (demo) [demo.port, demo.backendPort].forEach((p) => ports.add(p));
  return { names, ports };
}

/** Control characters (newlines above all) never reach a template, even through raw `getv`. */
const UNSAFE_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

/**
 * Merge the sources: raw keys into one map (keys are absolute, each source under its own
 * prefix), backends into one list. A backend that would take a name or a port the config
 * already uses is skipped with a log line (one bad entry never blocks the rest); the same name
 * from two sources is renamed `<source>_<name>`.
 */
export function mergeSnapshots(
  snapshots: Iterable<Snapshot>,
  taken: { names: Set<string>; ports: Set<number> },
  log: Logger,
): { keys: Record<string, string>; backends: DiscoveredBackend[]; files: Record<string, string> } {
  const keys: Record<string, string> = {};
  const backends: DiscoveredBackend[] = [];
  const files: Record<string, string> = {};
  const names = new Set(taken.names);
  const ports = new Set(taken.ports);
  for (const snap of [...snapshots].sort((a, b) => a.source.localeCompare(b.source))) {
    for (const [key, value] of Object.entries(snap.keys)) if (!UNSAFE_VALUE.test(value)) keys[key] = value;
    Object.assign(files, snap.files ?? {});
    for (const backend of snap.backends) {
      const skip = (why: string) => log.warn({ source: snap.source, backend: backend.name }, `source ${snap.source}: backend ${backend.name} skipped: ${why}`);
      if (taken.names.has(backend.name)) {
        skip(`the name is taken by ${backend.name.startsWith('fe_') || ['stats', 'demo', 'demo_backend'].includes(backend.name) ? "haproxy-pilot's own sections" : `service ${backend.name}`}`);
        continue;
      }
      const name = names.has(backend.name) ? `${snap.source}_${backend.name}` : backend.name;
      if (names.has(name) || name.length > 63) {
        skip(`another source already has a backend named ${backend.name}`);
        continue;
      }
      const port = backend.route?.port;
      if (port !== undefined && ports.has(port)) {
        skip(`port ${port} is already in use by the configuration`);
        continue;
      }
      names.add(name);
      if (port !== undefined) ports.add(port);
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

/** The config as templates see it: secrets are handed to the template only where they belong. */
function withoutSecrets(config: PilotConfig): PilotConfig {
  const { kv, etcd } = config.sources;
  return {
    ...config,
    stats: { ...config.stats, password: undefined },
    sources: {
      ...config.sources,
      ...(kv ? { kv: { ...kv, token: undefined } } : {}),
      ...(etcd ? { etcd: { ...etcd, password: undefined } } : {}),
    },
  };
}

/** Loads the templates now (a broken template throws here), renders on every build. */
export function createCandidateBuilder(context: BuildContext) {
  const templates = loadTemplates(context.config.templatesDir);
  const taken = reserved(context.config, context.demo);
  const templateConfig = withoutSecrets(context.config);
  return {
    context,
    async build(snapshots: ReadonlyMap<string, Snapshot>): Promise<Built> {
      const { config } = context;
      if (config.haproxy.userConfig) return buildFromUserConfig(config.haproxy.userConfig, config.env);
      const merged = mergeSnapshots(snapshots.values(), taken, context.log);
      const dir = join(config.haproxy.runDir, 'certs');
      const hasCerts = Object.keys(merged.files).length > 0;
      const certsDir = context.writeFiles === false ? (hasCerts ? dir : undefined) : await writeCerts(dir, merged.files);
      const text = renderConfig(templates, {
        config: templateConfig,
        backends: merged.backends,
        keys: merged.keys,
        statsPassword: context.statsPassword,
        certsDir,
        hasPrometheus: context.hasPrometheus,
        demo: context.demo,
      });
      return { text, backends: merged.backends, liftedPrograms: [], liftWarnings: [] };
    },
  };
}
