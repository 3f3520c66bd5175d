/**
 * Command line: `haproxy-pilot [run] | render [--out FILE] | check | plan [--snapshot FILE] |
 * healthcheck | version | help`, and the official image's conventions: a first argument that is
 * not one of these runs as a command of its own (`sh`, `haproxy -vv`); a first argument starting
 * with `-` goes to HAProxy (`haproxy -W -db <args>`), except haproxy-api's `-F host:port` and
 * `-f <file>.toml`. Each command returns its exit code; only main.ts touches process.
 *
 * Output: stdout carries a command's result and nothing else (the config of `render`, the
 * verdict of `check`, the diff of `plan`); logs go to stderr (stdout for `run`, the container's
 * log), and the error that ends a command is reported by report.ts.
 */
import { readFileSync, existsSync } from 'node:fs';
import { mkdtemp, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { createLogger, type Logger } from './log.js';
import { loadConfig } from './config/load.js';
import type { PilotConfig } from './config/types.js';
import { ExitCode } from './init/exit-code.js';
import { describeError, isPilotError, PilotError } from './errors.js';
import { runCommand } from './run/run.js';
import { exitCodeFor } from './init/exit-code.js';
import { createSources } from './sources/registry.js';
import { createBuilder, describeOrigin, type Candidate } from './candidate.js';
import { probeHaproxy, resolveHaproxyBin } from './run/haproxy-features.js';
import { statsCredentials } from './run/stats-password.js';
import { demoPorts } from './demo/program.js';
import { createPilot } from './pilot.js';
import { checkConfig, firstAlert } from './apply/check.js';
import { parseSidecarArgs, type SidecarArgs } from './sources/sidecar/settings.js';
import { createGenerations } from './apply/generations.js';
import { openFilesHardLimit } from './config/limits.js';
import { VERSION } from './version.js';
import { defaultRunDirProbe, runDirFallback } from './run/run-dir-fallback.js';
import { reportError } from './report.js';
import { execAsIs } from './run/exec.js';
import type { PlanAnswer } from './run/planner.js';

export interface CliIo {
  env: Readonly<Record<string, string | undefined>>;
  stdout: NodeJS.WritableStream;
  stderr: NodeJS.WritableStream & { isTTY?: boolean };
  /** Whether stdin is a terminal (`docker run -it`): for commands run as they are. */
  stdinTTY?: boolean;
  onFatal(handler: (err: unknown) => void): void;
}

const USAGE = `usage: haproxy-pilot [command]
       haproxy-pilot <program> [args…]        run a program as it is (sh, haproxy -vv)
       haproxy-pilot -<haproxy option> …      run haproxy -W -db -<haproxy option> … (as the official image)
       haproxy-pilot [-F host:port] [-f haproxy-api.toml] [command]

  run          (default) be the container's init: run HAProxy and helper programs, apply changes
  render       print the haproxy.cfg the environment, files and sources give (no side effects)
               --out FILE  write it to FILE instead (atomically: a reader never sees half a file)
  check        render and validate it with haproxy -c (exit 0, or 78 when invalid)
  plan         what the running haproxy-pilot would apply now: the diff of haproxy.cfg and the
               runtime API commands, or why it needs a reload; applies nothing
               --snapshot FILE  plan for this discovery data (DISCOVERY_FILE's format) instead
  healthcheck  exit 0 when GET /health on PILOT_CONTROL_ADDR answers 200, else 1 with the reasons
  version      print haproxy-pilot's and HAProxy's versions

  -F host:port         follow a Sidecar (haproxy-api's follower mode, HAPROXY_API_FOLLOW)
  -f haproxy-api.toml  read haproxy-api's configuration file (HAPROXY_API_CONFIG_FILE); -f with
                       any other file goes to HAProxy: haproxy -W -db -f FILE
  --                   everything after it goes to HAProxy: haproxy -W -db …

Configuration comes from environment variables and PILOT_CONFIG (yaml): see the README.
`;

const COMMANDS = new Set(['run', 'render', 'check', 'plan', 'healthcheck', 'version', 'help']);
const OUR_FLAGS = new Set(['-h', '--help', '--version']);

export function readConfig(env: CliIo['env'], flags: SidecarArgs = { rest: [] }): PilotConfig {
  return loadConfig({
    env,
    readFile: (path: string) => readFileSync(path, 'utf8'),
    fileExists: (path: string) => existsSync(path),
    runDirFallback: (dir) => runDirFallback(dir, defaultRunDirProbe(env)),
    // haproxy-api's own flags, so `haproxy-pilot -F sidecar:7777` runs like `haproxy-api -F …`.
    flags: {
      ...(flags.follow !== undefined ? { HAPROXY_API_FOLLOW: { value: flags.follow, flag: '-F' } } : {}),
      ...(flags.configFile !== undefined ? { HAPROXY_API_CONFIG_FILE: { value: flags.configFile, flag: '-f' } } : {}),
    },
  });
}

/** `-F`, `--follow`, `--config-file`, or `-f` naming a .toml file: haproxy-api's flags, not HAProxy's. */
export function isHaproxyApiFlag(argv: readonly string[]): boolean {
  const first = argv[0] ?? '';
  // HAProxy has neither -F nor long options: these are haproxy-api's whatever follows.
  if (first === '-F' || /^-F./.test(first) || first === '--follow' || first.startsWith('--follow=')) return true;
  if (first === '--config-file' || first.startsWith('--config-file=')) return true;
  const file = first === '-f' ? argv[1] : /^-f./.test(first) ? first.slice(2) : undefined;
  return file !== undefined && file.endsWith('.toml');
}

interface CommandOptions {
  out?: string;
  snapshot?: string;
}

function parseOptions(command: string, args: readonly string[]): CommandOptions {
  const allowed: Record<string, string> = command === 'render' ? { '--out': 'out' } : command === 'plan' ? { '--snapshot': 'snapshot' } : {};
  const out: CommandOptions = {};
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    const eq = arg.indexOf('=');
    const name = eq > 0 ? arg.slice(0, eq) : arg;
    const key = allowed[name] as keyof CommandOptions | undefined;
    if (!key) throw new PilotError('E_CONFIG', `${command}: unexpected argument ${JSON.stringify(arg)}`);
    const value = eq > 0 ? arg.slice(eq + 1) : args[++i];
    if (value === undefined || value === '') throw new PilotError('E_CONFIG', `${command}: ${name} needs a file`);
    out[key] = value;
  }
  return out;
}

export async function runCli(rawArgv: readonly string[], io: CliIo): Promise<number> {
  const envFormat = io.env.PILOT_LOG_FORMAT === 'pretty' ? 'pretty' : 'json';
  const report = (err: unknown, format: 'json' | 'pretty' = envFormat): number => {
    reportError(err, io.stderr, { format });
    return exitCodeFor(err);
  };

  // The official image's entrypoint conventions.
  const first = rawArgv[0];
  if (first !== undefined && !COMMANDS.has(first) && !OUR_FLAGS.has(first)) {
    const quiet = createLogger({ level: 'warn', format: envFormat, destination: io.stderr });
    const execIo = { stderr: io.stderr, log: quiet, tty: io.stdinTTY === true };
    try {
      if (first === '--') return await execAsIs(resolveHaproxyBin(io.env.HAPROXY_BIN ?? 'haproxy', io.env.PATH), ['-W', '-db', ...rawArgv.slice(1)], execIo);
      if (first.startsWith('-') && !isHaproxyApiFlag(rawArgv)) {
        return await execAsIs(resolveHaproxyBin(io.env.HAPROXY_BIN ?? 'haproxy', io.env.PATH), ['-W', '-db', ...rawArgv], execIo);
      }
      if (!first.startsWith('-')) {
        // `haproxy -vv` finds HAProxy where haproxy-pilot would (Debian's /usr/sbin is not on a user's PATH).
        const file = first === 'haproxy' ? resolveHaproxyBin(io.env.HAPROXY_BIN ?? 'haproxy', io.env.PATH) : first;
        return await execAsIs(file, rawArgv.slice(1), execIo);
      }
    } catch (err) {
      return report(err);
    }
  }

  let flags: SidecarArgs;
  try {
    flags = parseSidecarArgs(rawArgv);
  } catch (err) {
    io.stderr.write(`haproxy-pilot: ${describeError(err)}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }
  const [command = 'run', ...args] = flags.rest;
  if (command === 'help' || command === '--help' || command === '-h') {
    io.stdout.write(USAGE);
    return ExitCode.OK;
  }
  if (command === 'version' || command === '--version') return version(io);
  let options: CommandOptions;
  try {
    if (!COMMANDS.has(command)) throw new PilotError('E_CONFIG', `unknown command ${JSON.stringify(flags.rest.join(' '))}`);
    options = parseOptions(command, args);
  } catch (err) {
    io.stderr.write(`haproxy-pilot: ${describeError(err)}\n\n${USAGE}`);
    return ExitCode.USAGE;
  }

  let config: PilotConfig;
  try {
    config = readConfig(io.env, flags);
  } catch (err) {
    return report(err);
  }
  const reportNow = (err: unknown): number => report(err, config.log.format);
  if (command === 'run') {
    const log = createLogger(config.log);
    return runCommand(config, { log, reloadConfig: () => readConfig(io.env, flags), onFatal: io.onFatal, report: (err) => void reportNow(err) });
  }
  // Every other command's logs go to stderr: stdout is the command's result.
  const log = createLogger({ ...config.log, destination: io.stderr });
  try {
    if (command === 'healthcheck') return await healthcheckCommand(config, io);
    if (command === 'plan') return await planCommand(config, options, io);
    for (const note of config.notes) log.info(note);
    for (const warning of config.warnings) log.warn(warning);
    const candidate = await renderOnce(config, log);
    for (const warning of candidate.warnings) log.warn(warning);
    if (command === 'render') {
      if (options.out !== undefined) await writeAtomically(resolve(options.out), candidate.text);
      else io.stdout.write(candidate.text);
      return ExitCode.OK;
    }
    return await checkCandidate(config, candidate, io, log);
  } catch (err) {
    return reportNow(err);
  }
}

/** Writes a sibling temp file and renames it over `path`: readers see the old file or the new one, whole. */
export async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  try {
    await writeFile(tmp, text, { flag: 'wx' });
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => {});
    throw new PilotError('E_CONFIG', `render --out: cannot write ${path}: ${(err as NodeJS.ErrnoException).code ?? describeError(err)}`, { cause: err });
  }
}

/** One candidate from a single read of every source, with no side effects (nothing written). */
async function renderOnce(config: PilotConfig, quiet: Logger): Promise<Candidate> {
  const features = await probeHaproxy(config.haproxy.bin);
  // The password of an earlier start when its file is there, else a marked placeholder: the
  // output is the same on every call (stats-password.ts).
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

/**
 * `haproxy -c` on the candidate staged as the applier would (config and files in one folder).
 * A refusal names the line, what wrote it (template file and line, yaml key, or the operator's
 * config) and keeps the staged files for inspection.
 */
async function checkCandidate(config: PilotConfig, candidate: Candidate, io: CliIo, log: Logger): Promise<number> {
  const features = await probeHaproxy(config.haproxy.bin);
  const dir = await mkdtemp(join(tmpdir(), 'haproxy-pilot-check-'));
  let keep = false;
  try {
    const stage = await createGenerations(dir).stage(candidate);
    try {
      const result = await checkConfig({ bin: features.bin, path: stage.configPath, ...(config.haproxy.userConfig ? {} : { chdir: stage.dir }) });
      // The server-state file is made by `run` before HAProxy starts: its absence here is expected.
      const stateFile = join(config.haproxy.runDir, 'server-state');
      for (const w of result.warnings) if (!w.includes(`'${stateFile}'`)) log.warn({ file: config.haproxy.userConfig }, w);
    } catch (err) {
      if (!isPilotError(err, 'E_CHECK')) throw err;
      keep = true;
      throw explainCheck(err, candidate, stage.configPath);
    }
    io.stdout.write('configuration is valid\n');
    return ExitCode.OK;
  } finally {
    if (!keep) await rm(dir, { recursive: true, force: true });
  }
}

function explainCheck(err: PilotError, candidate: Candidate, staged: string): PilotError {
  const line = typeof err.details?.['line'] === 'number' ? (err.details['line'] as number) : undefined;
  const output = typeof err.details?.['output'] === 'string' ? (err.details['output'] as string) : '';
  const origin = line === undefined ? undefined : candidate.origin?.(line);
  const alert = firstAlert(output) ?? err.message;
  const where = line === undefined ? 'the config' : `line ${line}${origin ? `, written by ${describeOrigin(origin)}` : ''}`;
  return new PilotError('E_CHECK', `haproxy -c rejected ${where}: ${alert} (the rendered config is kept in ${staged})`, {
    cause: err,
    details: { ...err.details, file: staged, ...(origin ? { origin } : {}) },
  });
}

async function healthcheckCommand(config: PilotConfig, io: CliIo): Promise<number> {
  // No control server, no health to read: report healthy rather than fail every probe.
  if (config.control.disabled) {
    io.stderr.write('healthcheck: PILOT_CONTROL_ADDR=off, nothing to check\n');
    return ExitCode.OK;
  }
  // Loaded here only: its HTTP client (undici) is a large module the running pilot does not need.
  const { healthcheckWithReasons } = await import('./control/healthcheck.js');
  const result = await healthcheckWithReasons(config.control);
  for (const reason of result.reasons) io.stdout.write(`unhealthy: ${reason}\n`);
  return result.code;
}

async function planCommand(config: PilotConfig, options: CommandOptions, io: CliIo): Promise<number> {
  if (config.control.disabled) throw new PilotError('E_CONFIG', 'plan asks the running haproxy-pilot on PILOT_CONTROL_ADDR, which is off');
  let body = '';
  if (options.snapshot !== undefined) {
    const path = resolve(options.snapshot);
    const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
      throw new PilotError('E_CONFIG', `plan --snapshot: cannot read ${path}: ${err.code ?? err.message}`);
    });
    body = JSON.stringify({ snapshot: { name: path, text } });
  }
  const host = ['', '0.0.0.0'].includes(config.control.host) ? '127.0.0.1' : config.control.host === '::' ? '::1' : config.control.host;
  const url = `http://${host.includes(':') ? `[${host}]` : host}:${config.control.port}/plan`;
  // The plan command's own modules (an HTTP client, a diff), not the running pilot's.
  const [{ request }, { createTwoFilesPatch }] = await Promise.all([import('undici'), import('diff')]);
  let answer: PlanAnswer;
  try {
    const res = await request(url, { method: 'POST', body, headers: { 'content-type': 'application/json' }, headersTimeout: 60_000, bodyTimeout: 60_000 });
    answer = (await res.body.json()) as PlanAnswer;
  } catch (err) {
    io.stderr.write(`haproxy-pilot: plan: cannot reach the running haproxy-pilot at ${url}: ${(err as { code?: string }).code ?? describeError(err)} (is it running? PILOT_CONTROL_ADDR)\n`);
    return ExitCode.UNAVAILABLE;
  }
  if (!answer.ok || !answer.running || !answer.candidate || !answer.plan) {
    throw new PilotError((answer.error?.code as PilotError['code'] | undefined) ?? 'E_INTERNAL', answer.error?.message ?? 'plan: no answer');
  }
  // (Passwords come masked: planner.ts.)
  const patch = createTwoFilesPatch(answer.running.path, 'candidate', answer.running.text, answer.candidate.text, 'running', options.snapshot ? `from ${options.snapshot}` : 'from the sources now', { context: 3 });
  const hunks = patch.split('\n').findIndex((l) => l.startsWith('@@'));
  if (hunks >= 0) io.stdout.write(patch.split('\n').slice(patch.startsWith('====') ? 1 : 0).join('\n'));
  else io.stdout.write(`haproxy.cfg: no change (${answer.running.path})\n`);
  const p = answer.plan;
  if (p.kind === 'none') io.stdout.write('plan: nothing to apply\n');
  else if (p.kind === 'runtime') io.stdout.write(`plan: ${p.commands.length} runtime API command${p.commands.length === 1 ? '' : 's'}, no reload\n${p.commands.map((c) => `  ${c}\n`).join('')}`);
  else io.stdout.write(`plan: reload (${p.reason ?? 'the config changed'})\n`);
  for (const e of answer.excluded ?? []) io.stdout.write(`left out: source ${e.source}: ${e.entry}: ${e.reason}\n`);
  for (const w of answer.warnings ?? []) io.stdout.write(`warning: ${w}\n`);
  return ExitCode.OK;
}

async function version(io: CliIo): Promise<number> {
  io.stdout.write(`haproxy-pilot ${VERSION}\n`);
  try {
    const features = await probeHaproxy(io.env.HAPROXY_BIN ?? 'haproxy', io.env.PATH);
    io.stdout.write(`HAProxy ${features.version} (${features.bin})\n`);
  } catch (err) {
    io.stdout.write(`HAProxy: ${describeError(err)}\n`);
  }
  return ExitCode.OK;
}
