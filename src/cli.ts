/**
 * Command line: `haproxy-pilot [run] | render | check | healthcheck | version | help`.
 * Each command returns its exit code; only main.ts touches process.
 */
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from './log.js';
import { loadConfig } from './config/load.js';
import type { PilotConfig } from './config/types.js';
import { ExitCode } from './init/exit-code.js';
import { describeError, isPilotError } from './errors.js';
import { runCommand, exitCodeFor } from './run/run.js';
import { createSources } from './run/sources.js';
import { createCandidateBuilder } from './run/build-candidate.js';
import { probeHaproxy } from './run/haproxy-features.js';
import { statsCredentials } from './run/stats-password.js';
import { demoPorts } from './run/demo.js';
import { createPilot } from './pilot.js';
import { checkConfig } from './apply/check.js';
import { healthcheck } from './control/healthcheck.js';
import { VERSION } from './version.js';

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  onFatal(handler: (err: unknown) => void): void;
}

const USAGE = `usage: haproxy-pilot [command]

  run          (default) be the container's init: run HAProxy and helper programs, apply changes
  render       print the haproxy.cfg the environment, files and sources give (no side effects)
  check        render and validate it with haproxy -c (exit 0, or 78 when invalid)
  healthcheck  exit 0 when GET /health on PILOT_CONTROL_ADDR answers 200, else 1
  version      print haproxy-pilot's and HAProxy's versions

Configuration comes from environment variables and PILOT_CONFIG (yaml): see the README.
`;

export function readConfig(env: CliIo['env']): PilotConfig {
  return loadConfig({ env, readFile: (path: string) => readFileSync(path, 'utf8'), fileExists: (path: string) => existsSync(path) });
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const command = argv[0] ?? 'run';
  if (command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  if (command === 'version' || command === '--version') return version(io);
  if (!['run', 'render', 'check', 'healthcheck'].includes(command) || argv.length > 1) {
    io.stderr.write(`haproxy-pilot: unknown command ${JSON.stringify(argv.join(' '))}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }

  let config: PilotConfig;
  try {
    config = readConfig(io.env);
  } catch (err) {
    // Before the configuration is read there is no configured logger: one JSON line on stdout,
    // like every other line haproxy-pilot writes.
    const log = createLogger({ level: 'info', format: 'json' });
    log.error({ code: isPilotError(err) ? err.code : undefined }, describeError(err));
    return exitCodeFor(err);
  }
  // render and check print the config or the verdict on stdout: their logs go to stderr.
  const log = createLogger(command === 'run' ? config.log : { ...config.log, destination: io.stderr });
  try {
    if (command === 'run') return await runCommand(config, { log, reloadConfig: () => readConfig(io.env), onFatal: io.onFatal });
    if (command === 'healthcheck') {
      // No control server, no health to read: report healthy rather than fail every probe.
      if (config.control.disabled) {
        io.stderr.write('healthcheck: PILOT_CONTROL_ADDR=off, nothing to check\n');
        return ExitCode.OK;
      }
      return await healthcheck(config.control);
    }
    const text = await renderOnce(config, log);
    if (command === 'render') {
      io.stdout.write(text);
      return ExitCode.OK;
    }
    return await checkText(config, text, io);
  } catch (err) {
    log.error({ code: isPilotError(err) ? err.code : undefined, details: isPilotError(err) ? err.details : undefined }, describeError(err));
    return exitCodeFor(err);
  }
}

/** One render from a single read of every source, with no side effects (nothing written). */
async function renderOnce(config: PilotConfig, quiet: Logger): Promise<string> {
  const features = await probeHaproxy(config.haproxy.bin);
  const credentials = await statsCredentials(config.stats, { write: false });
  const builder = createCandidateBuilder({
    config,
    statsPassword: credentials.password,
    hasPrometheus: features.prometheus && config.stats.prometheus,
    demo: demoPorts(config.demo),
    writeFiles: false,
    log: quiet,
  });
  const sources = createSources(config, quiet);
  const pilot = createPilot({ log: quiet, sources, applier: { apply: async () => ({ ok: true, kind: 'none' }) }, build: (s) => builder.build(s), quietMinMs: 0, quietMaxMs: 0, staleAfterMs: config.sources.staleAfterMs });
  pilot.startSources();
  await pilot.firstAnswers(config.sources.kv?.timeoutMs ?? 10_000);
  const snapshots = pilot.snapshots();
  await pilot.stop();
  return (await builder.build(snapshots)).text;
}

async function checkText(config: PilotConfig, text: string, io: CliIo): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'haproxy-pilot-check-'));
  try {
    const path = join(dir, 'haproxy.cfg');
    await writeFile(path, text);
    await checkConfig({ bin: config.haproxy.bin, path });
    io.stdout.write('configuration is valid\n');
    return ExitCode.OK;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function version(io: CliIo): Promise<number> {
  io.stdout.write(`haproxy-pilot ${VERSION}\n`);
  try {
    const features = await probeHaproxy(io.env.HAPROXY_BIN ?? 'haproxy');
    io.stdout.write(`HAProxy ${features.version}\n`);
  } catch (err) {
    io.stdout.write(`HAProxy: ${describeError(err)}\n`);
  }
  return ExitCode.OK;
}
