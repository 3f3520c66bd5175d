/**
 * The product's path from settings and snapshots to a candidate, as src/run/run.ts wires it:
 * loadConfig over an injected environment, createBuilder (with the control listener reserved and
 * the demo's ports), mergeSnapshots, build. Each render is checked against the oracle.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { isPilotError } from '../../../src/errors.js';
import { loadConfig } from '../../../src/config/load.js';
import type { PilotConfig } from '../../../src/config/types.js';
import { createBuilder, type Builder, type Candidate } from '../../../src/candidate.js';
import { demoPorts } from '../../../src/demo/program.js';
import { mergeSnapshots, type DesiredState } from '../../../src/state/merge.js';
import type { Snapshot } from '../../../src/sources/source.js';
import { checkRender, expectFrom, type Expectation } from './oracle.js';
import { memoizeHandlebarsCompile } from './handlebars-memo.js';

memoizeHandlebarsCompile();

let prometheus: boolean | undefined;
/** Whether the installed HAProxy has the Prometheus exporter (the stats frontend then uses it). */
export function hasPrometheus(): boolean {
  if (prometheus === undefined) {
    try {
      prometheus = /Prometheus exporter as a service/.test(execFileSync(process.env.HAPROXY_BIN ?? 'haproxy', ['-vv'], { encoding: 'utf8' }));
    } catch {
      prometheus = false;
    }
  }
  return prometheus;
}

/** The stats password the pilot would generate when none is given. */
export const GENERATED_PASSWORD = 'generated-Pw_1-generated-Pw_1';

export interface FileSystem {
  files?: Record<string, string>;
}

export function load(env: Record<string, string | undefined>, fs: FileSystem = {}): PilotConfig {
  const files = fs.files ?? {};
  return loadConfig({
    env,
    readFile: (p) => {
      // The open files limit is the machine's own (HAPROXY_MAXCONN is checked against it).
      if (p === '/proc/self/limits' && !Object.hasOwn(files, p)) return readFileSync(p, 'utf8');
      if (!Object.hasOwn(files, p)) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return files[p]!;
    },
    fileExists: (p) => Object.hasOwn(files, p),
  });
}

export function builderFor(config: PilotConfig): Builder {
  const listeners = config.control.disabled ? [] : [{ address: config.control.host, port: config.control.port, owner: 'PILOT_CONTROL_ADDR' }];
  return createBuilder({
    config,
    // As src/run/stats-password.ts hands it over: the given password, else a generated one.
    ...(config.stats.auth === 'none' || config.stats.port === 0 ? {} : { statsPassword: config.stats.password ?? GENERATED_PASSWORD }),
    hasPrometheus: hasPrometheus() && config.stats.prometheus,
    ...(config.demo ? { demo: demoPorts(config.demo)! } : {}),
    listeners,
  });
}

export interface Rendered {
  candidate: Candidate;
  desired: DesiredState;
  expectation: Expectation;
  /** What the oracle found wrong ([] when the render is as expected). */
  problems: string[];
}

/** merge → build → oracle. A build that throws is returned as `error` (the caller decides). */
export async function render(builder: Builder, snapshots: readonly Snapshot[], hostileInputs: readonly string[] = []): Promise<Rendered> {
  const desired = mergeSnapshots(snapshots, builder.reserved);
  const candidate = await builder.build(desired);
  const { config } = builder.settings;
  const expectation = expectFrom({
    config,
    backends: desired.backends,
    hasCerts: Object.keys(desired.files).length > 0,
    ...(builder.settings.demo ? { demo: builder.settings.demo } : {}),
    ...(builder.settings.statsPassword === undefined ? {} : { statsPassword: builder.settings.statsPassword }),
  });
  return { candidate, desired, expectation, problems: checkRender(candidate.text, expectation, hostileInputs) };
}

/** Every string in a value (keys too), for the "never spans a newline" check. */
export function stringsIn(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (Array.isArray(value)) for (const v of value) stringsIn(v, out);
  else if (value !== null && typeof value === 'object') {
    for (const [k, v] of Object.entries(value)) {
      out.push(k);
      stringsIn(v, out);
    }
  }
  return out;
}

/** Rethrows anything that is not a PilotError: a crash. */
export function onlyPilotErrors(err: unknown, where: string): never | void {
  if (!isPilotError(err)) {
    const e = new Error(`${where} crashed: ${err instanceof Error ? `${err.name}: ${err.message}` : String(err)}`);
    (e as { cause?: unknown }).cause = err;
    throw e;
  }
}
