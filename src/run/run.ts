/**
 * The `run` command: haproxy-pilot as the container's init. Wires config, reaper, signals,
 * helper programs, the HAProxy master, the applier, the sources, the reconcile loop and the
 * control server, then waits for the one thing that ends it: a stop signal, HAProxy exiting on
 * its own, or an unexpected error — and stops everything in order.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { PilotConfig, ProgramSpec } from '../config/types.js';
import type { Applier } from '../apply/applier.js';
import type { ExitInfo } from '../supervise/types.js';
import { ExitCode, childExitCode } from '../init/exit-code.js';
import { describeError, isPilotError, PilotError } from '../errors.js';
import { createReaper } from '../init/reaper.js';
import { loadLibc } from '../init/libc.js';
import { installSignalHandlers, nextIntent, type SignalIntent } from '../init/signals.js';
import { createHaproxyMaster } from '../supervise/haproxy.js';
import { createProgramSupervisor } from '../supervise/programs.js';
import { spawnWithExeca } from '../supervise/child.js';
import { createApplier } from '../apply/applier.js';
import { checkConfig } from '../apply/check.js';
import { writeAtomic } from '../apply/write.js';
import { startControlServer } from '../control/server.js';
import { ensureServerStateFile, withServerState } from '../apply/server-state.js';
import { createPilot, type Candidate, type PassResult } from '../pilot.js';
import { createSources } from './sources.js';
import { statsCredentials } from './stats-password.js';
import { probeHaproxy } from './haproxy-features.js';
import { createCandidateBuilder } from './build-candidate.js';
import { demoProgram, demoPorts, waitForPort, type DemoPorts } from './demo.js';
import { VERSION } from '../version.js';

export interface RunIo {
  log: Logger;
  /** Re-reads the configuration (yaml, *_FILE secrets) for SIGHUP / POST /reload. */
  reloadConfig(): PilotConfig;
  /** Registers the last-resort handler for errors nothing else caught. */
  onFatal(handler: (err: unknown) => void): void;
}

type Ending = { kind: 'stop'; mode: 'graceful' | 'fast'; signal?: string } | { kind: 'haproxy'; exit: ExitInfo } | { kind: 'fatal'; error: unknown };

export async function runCommand(initial: PilotConfig, io: RunIo): Promise<number> {
  const { log } = io;
  let config = initial;
  const reaper = createReaper({ libc: loadLibc, log: log.child({ component: 'reaper' }) });
  reaper.start();

  let end!: (ending: Ending) => void;
  const ended = new Promise<Ending>((resolve) => (end = resolve));
  io.onFatal((error) => end({ kind: 'fatal', error }));

  // Signals are handled from the first moment: a stop asked for during start-up is honoured
  // once the parts that exist are up, never ignored.
  let state: 'running' | 'graceful-stop' | 'fast-stop' = 'running';
  let onReloadSignal: (signal: string) => void = () => log.warn('reload signal before start-up finished: ignored');
  let relay: (signal: NodeJS.Signals) => void = () => {};
  const uninstallSignals = installSignalHandlers((intent: SignalIntent, signal: NodeJS.Signals) => {
    const next = nextIntent(state, intent);
    if (next === 'graceful-stop' || next === 'fast-stop') {
      if (next !== state) log.info({ signal }, `${signal}: ${next}`);
      // Hardening (issue 13): a stop signal during a graceful stop escalates it: the master's
      // stop('fast') cuts PILOT_STOP_DELAY short and sends SIGTERM at once (shutdown's own
      // stop() call then joins that stop).
      if (next === 'fast-stop' && state === 'graceful-stop') master?.stop('fast').catch(() => {});
      state = next;
      end({ kind: 'stop', mode: next === 'graceful-stop' ? 'graceful' : 'fast', signal });
    } else if (next === 'reload') onReloadSignal(signal);
    else if (next === 'relay') relay(signal);
    else log.info({ signal }, `${signal} ignored while stopping`);
  }, process, log.child({ component: 'signals' }));

  // Helper programs get the environment without haproxy-pilot's secrets (config.env has none).
  const programs = createProgramSupervisor({
    log: log.child({ component: 'programs' }),
    specs: [],
    spawn: (file, args, options) => spawnWithExeca(file, args, { ...options, env: { ...config.env } }),
  });
  let master: ReturnType<typeof createHaproxyMaster> | undefined;
  let stopControl: () => Promise<void> = async () => {};
  const sources = createSources(config, log);
  const pilot = createPilot({
    log: log.child({ component: 'loop' }),
    sources,
    applier: { apply: (c, r, o) => applyVia(c, r, o) },
    build: async (snapshots, reread) => {
      if (!reread) return builder.build(snapshots);
      // SIGHUP / POST /reload: pilot.yaml, STATS_PASSWORD_FILE, templates, HAPROXY_CONFIG and
      // programs are read again. The new settings are taken only once they render: any error
      // keeps everything as it was. (Sources keep the settings they started with.)
      const next = io.reloadConfig();
      const credentials = await statsCredentials(next.stats);
      const nextBuilder = createCandidateBuilder({ ...builder.context, config: next, statsPassword: credentials.password });
      const built = await nextBuilder.build(snapshots);
      builder = nextBuilder;
      config = next;
      programs.setSpecs(programSpecs(config, built.liftedPrograms, builder.context.demo));
      logLiftWarnings(built.liftWarnings);
      return built;
    },
    quietMinMs: config.apply.quietMinMs,
    quietMaxMs: config.apply.quietMaxMs,
    staleAfterMs: config.sources.staleAfterMs,
  });
  // Passes asked for before HAProxy runs (sources answer during start-up) wait for the applier;
  // the first build already used their data, so such a pass usually finds nothing to change.
  let applierReady!: (applier: Applier | undefined) => void;
  const applierPromise = new Promise<Applier | undefined>((resolve) => (applierReady = resolve));
  const applyVia = async (candidate: Candidate, reason: string, options: { force: boolean }): Promise<PassResult> => {
    const applier = await applierPromise;
    if (!applier) return { ok: false, kind: 'none', error: { code: 'E_INTERNAL', message: 'stopping' } };
    const result = await applier.apply(candidate, reason, options);
    if (result.kind === 'reload' && result.ok) programs.onHaproxyReload();
    return result;
  };

  let builder!: ReturnType<typeof createCandidateBuilder>;
  const logLiftWarnings = (warnings: readonly string[]) => {
    for (const warning of warnings) log.warn({ config: config.haproxy.userConfig }, warning);
  };

  // A stop that arrives during start-up lets the current step finish, then start-up goes no
  // further, and shutdown waits for it: nothing is started behind shutdown's back.
  let stopping = false;
  const alive = () => {
    if (stopping) throw new PilotError('E_INTERNAL', 'start-up interrupted by a stop');
  };
  const started = (async (): Promise<void> => {
    await mkdir(config.haproxy.runDir, { recursive: true, mode: 0o750 }).catch((err: NodeJS.ErrnoException) => {
      throw new PilotError('E_CONFIG', `PILOT_RUN_DIR: cannot create ${config.haproxy.runDir} (${err.code ?? err.message})`, { cause: err });
    });
    const features = await probeHaproxy(config.haproxy.bin);
    const credentials = await statsCredentials(config.stats);
    if (credentials.generatedFile) {
      log.warn({ file: credentials.generatedFile, user: config.stats.user }, `no STATS_PASSWORD given: the stats page password is in ${credentials.generatedFile}`);
    }
    builder = createCandidateBuilder({
      config,
      statsPassword: credentials.password,
      hasPrometheus: features.prometheus && config.stats.prometheus,
      demo: demoPorts(config.demo),
      log: log.child({ component: 'render' }),
    });

    // Sources first, so the first config HAProxy runs already has the discovered backends.
    alive();
    pilot.startSources();
    await pilot.firstAnswers(config.apply.quietMaxMs + 5000);
    const stateFile = config.global.serverStateFile ? join(config.haproxy.runDir, 'server-state') : undefined;
    if (stateFile) await ensureServerStateFile(stateFile);
    const first = await builder.build(pilot.snapshots());
    logLiftWarnings(first.liftWarnings);
    await writeAtomic(config.haproxy.configPath, first.text);
    await checkConfig({ bin: config.haproxy.bin, path: config.haproxy.configPath });
    alive();

    const demo = builder.context.demo;
    programs.setSpecs(programSpecs(config, first.liftedPrograms, demo));
    alive();
    programs.start();
    // The demo's backend is up before HAProxy's first health check, so the first request is served.
    if (demo) await waitForPort(demo.backendPort, 5000);

    master = createHaproxyMaster({
      bin: config.haproxy.bin,
      configPath: config.haproxy.configPath,
      masterSocket: config.haproxy.masterSocket,
      stopDelayMs: config.haproxy.stopDelayMs,
      stopTimeoutMs: config.haproxy.stopTimeoutMs,
      reloadTimeoutMs: config.haproxy.reloadTimeoutMs,
      log: log.child({ component: 'haproxy' }),
    });
    const m = master;
    m.exited.then((exit) => end({ kind: 'haproxy', exit }), () => {});
    alive();
    await m.start();
    log.info({ version: features.version, config: config.haproxy.configPath, pid: m.status().masterPid }, 'HAProxy is running');

    const reloader = stateFile ? withServerState(m, { stateFile, configPath: config.haproxy.configPath }, log.child({ component: 'apply' })) : m;
    const applier = createApplier({ master: reloader, bin: config.haproxy.bin, runDir: config.haproxy.runDir, configPath: config.haproxy.configPath, log: log.child({ component: 'apply' }), initial: first });
    applierReady(applier);
    relay = (signal) => m.signal(signal);
    onReloadSignal = (signal) => void pilot.request(`signal ${signal}`, { force: true, reread: true });

    if (!config.control.disabled) {
      const control = await startControlServer({
        host: config.control.host,
        port: config.control.port,
        log: log.child({ component: 'control' }),
        status: () => ({ version: VERSION, haproxy: m.status(), lastPass: pilot.lastPass() ?? null, apply: applier.status(), sources: pilot.sources(), programs: programs.status() }),
        health: () => healthReasons(m.status(), pilot.lastPass(), pilot.unhealthySources()),
        reload: () => pilot.request('POST /reload', { force: true, reread: true }),
        // last_apply_success follows the last pass, which also counts render failures (as /health).
        metrics: () => ({ apply: { ...applier.status(), lastApply: pilot.lastPass() }, sources: pilot.sources(), version: VERSION }),
      });
      stopControl = control.close;
    }
  })();

  // Start-up errors end the run like any other ending.
  const startupFailure = started.then(
    () => new Promise<Ending>(() => {}),
    (error: unknown): Ending => ({ kind: 'fatal', error }),
  );
  const ending = await Promise.race([ended, startupFailure]);
  return shutdown(ending);

  async function shutdown(ending: Ending): Promise<number> {
    let code: number;
    if (ending.kind === 'fatal') {
      code = exitCodeFor(ending.error);
      if (code === ExitCode.CONFIG) log.error({ code: errorCode(ending.error), details: detailsOf(ending.error) }, describeError(ending.error));
      else log.fatal({ err: ending.error }, `stopping after an unexpected error: ${describeError(ending.error)}`);
    } else if (ending.kind === 'haproxy') {
      code = childExitCode(ending.exit.code, ending.exit.signal);
      log.error({ exit: ending.exit }, `HAProxy exited on its own (exit code ${code}): stopping`);
    } else code = ExitCode.OK;

    const deadline = Date.now() + config.haproxy.stopTimeoutMs;
    stopping = true;
    applierReady(undefined);
    await pilot.stop().catch((err) => log.warn({ err }, 'stopping the sources failed'));
    await started.catch(() => {});
    await stopControl().catch(() => {});
    if (master && ending.kind !== 'haproxy') {
      const exit = await master.stop(ending.kind === 'stop' ? ending.mode : 'fast').catch((err: unknown): ExitInfo => {
        log.error({ err }, 'stopping HAProxy failed');
        return { code: null, signal: 'SIGKILL' };
      });
      if (exit.signal === 'SIGKILL' && ending.kind === 'stop') {
        log.warn(`HAProxy did not stop within PILOT_STOP_TIMEOUT (${config.haproxy.stopTimeoutMs} ms) and was killed`);
        code = childExitCode(null, 'SIGKILL');
      }
    }
    await programs.stopAll(Math.max(1000, deadline - Date.now()));
    uninstallSignals();
    reaper.stop();
    log.info({ exitCode: code }, 'haproxy-pilot stopped');
    return code;
  }
}

function programSpecs(config: PilotConfig, lifted: ProgramSpec[], demo: DemoPorts | undefined): ProgramSpec[] {
  return [...config.programs, ...lifted, ...(demo ? [demoProgram(demo)] : [])];
}

function errorCode(err: unknown): string | undefined {
  return err instanceof PilotError ? err.code : undefined;
}

function detailsOf(err: unknown): unknown {
  return err instanceof PilotError ? err.details : undefined;
}

/** Errors found before HAProxy runs a config are configuration errors (78); the rest are internal (70). */
export function exitCodeFor(err: unknown): number {
  if (isPilotError(err, 'E_CONFIG') || isPilotError(err, 'E_TEMPLATE') || isPilotError(err, 'E_VALUE') || isPilotError(err, 'E_CHECK')) return ExitCode.CONFIG;
  if (isPilotError(err, 'E_HAPROXY')) {
    // The master exited before it was ready: its own code; HAProxy missing: EX_UNAVAILABLE.
    const exit = err.details as { code?: number | null; signal?: NodeJS.Signals | null } | undefined;
    return exit && (typeof exit.code === 'number' || exit.signal) ? childExitCode(exit.code ?? null, exit.signal ?? null) : ExitCode.UNAVAILABLE;
  }
  return ExitCode.INTERNAL;
}

/** Why /health is 503, or nothing. The last pass covers render failures as well as apply failures. */
export function healthReasons(
  haproxy: { masterPid?: number; workers: number[] },
  lastPass: { ok: boolean; error?: { message: string } } | undefined,
  staleSources: string[],
): string[] {
  const reasons: string[] = [];
  if (!haproxy.masterPid) reasons.push('the HAProxy master is not running');
  else if (haproxy.workers.length === 0) reasons.push('no HAProxy worker is running');
  if (lastPass && !lastPass.ok) reasons.push(`the last change was not applied (HAProxy keeps its running config): ${lastPass.error?.message ?? 'unknown error'}`);
  return [...reasons, ...staleSources];
}

