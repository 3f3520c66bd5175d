/**
 * From settings and the desired state to one candidate: the config text, every file it reads
 * (certificates, by path relative to its generation folder) and the programs it implies.
 * Two modes: HAPROXY_CONFIG runs the operator's file as it is (with `program` sections lifted
 * out, see supervise/program-sections.ts); otherwise the templates are rendered.
 */
import { readFile } from 'node:fs/promises';
import type { PilotConfig, ProgramSpec } from './config/types.js';
import type { ApplyCandidate } from './apply/transaction.js';
import type { DesiredState } from './state/merge.js';
import { reservedBy, type PortUse, type Reserved } from './state/reserved.js';
import { PilotError } from './errors.js';
import { validName } from './state/validate.js';
import { liftProgramSections } from './supervise/program-sections.js';
import { loadTemplates, originOf, renderConfig, renderConfigMapped, type RenderInput } from './render/render.js';
import type { BackendView } from './render/view.js';
import type { DiscoveredBackend } from './state/model.js';
import { demoProgram, type DemoPorts } from './demo/program.js';

export interface Settings {
  config: PilotConfig;
  statsPassword?: string;
  hasPrometheus: boolean;
  demo?: DemoPorts;
  /** The pilot's own HTTP listeners: discovery may not take their ports. */
  listeners?: readonly PortUse[];
  /** The open files hard limit HAProxy inherits (config/limits.ts); undefined: unlimited or unknown. */
  fdLimit?: number;
}

/** Descriptors HAProxy needs besides 2 per connection and 1 per checked server: listeners, pollers, its own sockets. */
const FD_RESERVE = 256;

/**
 * HAProxy needs 2 descriptors per connection (maxconn) and one per server with health checks,
 * and refuses to start or reload when the open files hard limit cannot hold them ("Cannot raise
 * FD limit to 23209, limit is 20000", measured on 2.6.12; `haproxy -c` does not check it). So a
 * discovery that grows past the limit does not fail every reload: maxconn is lowered to fit,
 * and the warning says by how much and what to raise.
 */
export function fitMaxconn(config: PilotConfig, backends: readonly DiscoveredBackend[], fdLimit: number | undefined): { maxconn?: number; warning?: string } {
  if (fdLimit === undefined) return {};
  let checked = 0;
  for (const b of backends) checked += b.servers.length + (b.dns ?? []).reduce((n, d) => n + d.slots, 0);
  for (const s of config.services) checked += s.servers.length + (s.dns?.slots ?? 0);
  const maxconn = config.global.maxconn;
  const needs = 2 * maxconn + checked + FD_RESERVE;
  if (needs <= fdLimit) return {};
  const fits = Math.max(1, Math.floor((fdLimit - checked - FD_RESERVE) / 2));
  return {
    maxconn: fits,
    warning:
      `HAPROXY_MAXCONN ${maxconn} lowered to ${fits} for this config: ${checked} servers and 2 descriptors per connection need ${needs} ` +
      `file descriptors, and the open files limit (RLIMIT_NOFILE hard) is ${fdLimit}; raise it (docker run --ulimit nofile=${needs}) to keep ${maxconn}`,
  };
}

export interface Candidate extends ApplyCandidate {
  /** Helper programs: PROGRAM_<NAME>, lifted `program` sections, the demo's backend. */
  programs: ProgramSpec[];
  /** What lifting left out of the operator's `program` sections. */
  warnings: string[];
  /**
   * What wrote line `line` (1-based) of `text`: a template file and its line, the operator's
   * config, or a yaml key (haproxy.global / haproxy.defaults lines) — for messages about a line
   * `haproxy -c` refused.
   */
  origin?(line: number): LineOrigin | undefined;
}

export interface LineOrigin {
  file: string;
  line?: number;
  /** A yaml key (`haproxy.global[1]`) when the line is one of pilot.yaml's raw lines. */
  key?: string;
}

/** `templates/partials/defaults.hbs:6`, `haproxy.global[1] in the yaml file (PILOT_CONFIG)`. */
export function describeOrigin(o: LineOrigin): string {
  if (o.key !== undefined) return `${o.key} in ${o.file}`;
  return o.line === undefined ? o.file : `${o.file}:${o.line}`;
}

/** The folder, relative to the generation, that certificates from the stores go to. */
export const CERTS_DIR = 'certs';

/** The config as templates see it: no secrets, and no source settings (they hold tokens). */
function forTemplates(config: PilotConfig): PilotConfig {
  return { ...config, stats: { ...config.stats, password: undefined }, sources: { ...config.sources, configured: [] } };
}

export interface Builder {
  readonly settings: Settings;
  /** What discovery may not take (for state/merge.ts). */
  readonly reserved: Reserved;
  build(desired: DesiredState): Promise<Candidate>;
}

/**
 * Loads the templates now (a broken template throws here, as does a port two settings share)
 * and renders on every build.
 */
export function createBuilder(settings: Settings): Builder {
  const { config } = settings;
  const templates = loadTemplates(config.templatesDir);
  const reserved = reservedBy(config, settings.demo, settings.listeners);
  const templateConfig = forTemplates(config);
  const ownPrograms = [...config.programs, ...(settings.demo ? [demoProgram(settings.demo)] : [])];
  const cache = new WeakMap<DiscoveredBackend, BackendView>();
  return {
    settings,
    reserved,
    async build(desired) {
      if (config.haproxy.userConfig) return fromUserConfig(config.haproxy.userConfig, config.env, ownPrograms);
      for (const name of Object.keys(desired.files)) validName('certificate file name', name.slice(CERTS_DIR.length + 1));
      const hasCerts = Object.keys(desired.files).length > 0;
      const fds = fitMaxconn(config, desired.backends, settings.fdLimit);
      const input: RenderInput = {
        config: templateConfig,
        backends: desired.backends,
        keys: desired.keys,
        statsPassword: settings.statsPassword,
        ...(hasCerts ? { certsDir: CERTS_DIR } : {}),
        hasPrometheus: settings.hasPrometheus,
        demo: settings.demo,
        cache,
        ...(fds.maxconn !== undefined ? { maxconn: fds.maxconn } : {}),
      };
      const text = renderConfig(templates, input);
      // Which template wrote a line: rendered again with markers, only when asked (a refused line).
      let mapped: ReturnType<typeof renderConfigMapped> | undefined;
      const origin = (line: number): LineOrigin | undefined => {
        // pilot.yaml's raw lines are printed as they are: name their key rather than the partial.
        const shown = text.split('\n')[line - 1]?.trim();
        for (const [key, lines] of [['haproxy.global', config.global.extraGlobal], ['haproxy.defaults', config.defaults.extraDefaults]] as const) {
          const i = lines.findIndex((l) => l.trim() === shown);
          if (shown && i >= 0) return { file: 'the yaml file (PILOT_CONFIG)', key: `${key}[${i}]` };
        }
        mapped ??= renderConfigMapped(templates, input);
        return originOf(templates, mapped, line);
      };
      return { text, files: desired.files, backends: desired.backends, programs: ownPrograms, warnings: fds.warning ? [fds.warning] : [], origin };
    },
  };
}

/** Read the operator's config and lift its program sections (expanding "${VAR}" as HAProxy would). */
async function fromUserConfig(path: string, env: Readonly<Record<string, string>>, ownPrograms: ProgramSpec[]): Promise<Candidate> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new PilotError('E_CONFIG', `HAPROXY_CONFIG: cannot read ${path}`, { cause: err });
  }
  const lifted = liftProgramSections(text, path, env);
  // Lifting keeps every line where it was: line n is line n of the operator's file.
  return { text: lifted.config, files: {}, backends: [], programs: [...ownPrograms, ...lifted.programs], warnings: lifted.warnings, origin: (line) => ({ file: path, line }) };
}
