/**
 * Command line: `haproxy-pilot [run] | render | check | healthcheck | version | help`.
 * Each command returns its exit code; only main.ts touches process.
 */
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from './log.js';
import { loadConfig } from './config/load.js';
import type { PilotConfig } from './config/types.js';
import { ExitCode } from './init/exit-code.js';
import { describeError, isPilotError } from './errors.js';
import { runCommand } from './run/run.js';
import { exitCodeFor } from './init/exit-code.js';
import { createSources } from './sources/registry.js';
import { createBuilder, type Candidate } from './candidate.js';
import { probeHaproxy } from './run/haproxy-features.js';
import { statsCredentials } from './run/stats-password.js';
import { demoPorts } from './demo/program.js';
import { createPilot } from './pilot.js';
import { checkConfig } from './apply/check.js';
import { parseSidecarArgs, type SidecarArgs } from './sources/sidecar/settings.js';
import { createGenerations } from './apply/generations.js';
import { openFilesHardLimit } from './config/limits.js';
import { VERSION } from './version.js';

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream;
  onFatal(handler: (err: unknown) => void): void;
}

const USAGE = `usage: haproxy-pilot [-F host:port] [-f haproxy-api.toml] [command]

  run          (default) be the container's init: run HAProxy and helper programs, apply changes
  render       print the haproxy.cfg the environment, files and sources give (no side effects)
  check        render and validate it with haproxy -c (exit 0, or 78 when invalid)
  healthcheck  exit 0 when GET /health on PILOT_CONTROL_ADDR answers 200, else 1
  version      print haproxy-pilot's and HAProxy's versions

  -F host:port         follow a Sidecar (haproxy-api's follower mode, HAPROXY_API_FOLLOW)
  -f haproxy-api.toml  read haproxy-api's configuration file (HAPROXY_API_CONFIG_FILE)

Configuration comes from environment variables and PILOT_CONFIG (yaml): see the README.
`;

export function readConfig(env: CliIo['env'], flags: SidecarArgs = { rest: [] }): PilotConfig {
  return loadConfig({
    env,
    readFile: (path: string) => readFileSync(path, 'utf8'),
    fileExists: (path: string) => existsSync(path),
    // haproxy-api's own flags, so `haproxy-pilot -F sidecar:7777` runs like `haproxy-api -F …`.
    flags: {
      ...(flags.follow !== undefined ? { HAPROXY_API_FOLLOW: { value: flags.follow, flag: '-F' } } : {}),
      ...(flags.configFile !== undefined ? { HAPROXY_API_CONFIG_FILE: { value: flags.configFile, flag: '-f' } } : {}),
    },
  });
}

export async function runCli(rawArgv: readonly string[], io: CliIo): Promise<number> {
  let flags: SidecarArgs;
  try {
    flags = parseSidecarArgs(rawArgv);
  } catch (err) {
    io.stderr.write(`haproxy-pilot: ${describeError(err)}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }
  const argv = flags.rest;
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
    config = readConfig(io.env, flags);
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
    if (command === 'run') return await runCommand(config, { log, reloadConfig: () => readConfig(io.env, flags), onFatal: io.onFatal });
    if (command === 'healthcheck') {
      // No control server, no health to read: report healthy rather than fail every probe.
      if (config.control.disabled) {
        io.stderr.write('healthcheck: PILOT_CONTROL_ADDR=off, nothing to check\n');
        return ExitCode.OK;
      }
      // Loaded here only: its HTTP client (undici) is a large module the running pilot does not need.
      const { healthcheck } = await import('./control/healthcheck.js');
      return await healthcheck(config.control);
    }
    const candidate = await renderOnce(config, log);
    if (command === 'render') {
      io.stdout.write(candidate.text);
      return ExitCode.OK;
    }
    return await checkCandidate(config, candidate, io);
  } catch (err) {
    log.error({ code: isPilotError(err) ? err.code : undefined, details: isPilotError(err) ? err.details : undefined }, describeError(err));
    return exitCodeFor(err);
  }
}

/** One candidate from a single read of every source, with no side effects (nothing written). */
async function renderOnce(config: PilotConfig, quiet: Logger): Promise<Candidate> {
  const features = await probeHaproxy(config.haproxy.bin);
  const credentials = await statsCredentials(config.stats, { write: false });
  const builder = createBuilder({
    config,
    statsPassword: credentials.password,
    hasPrometheus: features.prometheus && config.stats.prometheus,
    demo: demoPorts(config.demo),
    fdLimit: openFilesHardLimit(),
  });
  const sources = await createSources(config.sources.configured, { log: quiet });
  const pilot = createPilot({
    log: quiet,
    sources,
    builder: () => builder,
    transaction: { apply: async () => ({ ok: true, kind: 'none' }) },
    commit: () => {},
    quietMinMs: 0,
    quietMaxMs: 0,
    staleAfterMs: config.sources.staleAfterMs,
  });
  pilot.startSources();
  await pilot.firstAnswers(10_000);
  await pilot.stop();
  return pilot.build();
}

/** `haproxy -c` on the candidate staged as the applier would (config and files in one folder). */
async function checkCandidate(config: PilotConfig, candidate: Candidate, io: CliIo): Promise<number> {
  const dir = await mkdtemp(join(tmpdir(), 'haproxy-pilot-check-'));
  try {
    const stage = await createGenerations(dir).stage(candidate);
    await checkConfig({ bin: config.haproxy.bin, path: stage.configPath, ...(config.haproxy.userConfig ? {} : { chdir: stage.dir }) });
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
