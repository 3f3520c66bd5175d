/**
 * The `run` command: haproxy-pilot as the container's init, wired top-down like tini's main():
 * reaper and signals first, then the sources and their listeners, the first config, the helper
 * programs and the HAProxy master, then the reconcile loop — and it waits for the one thing that
 * ends it (a stop signal, HAProxy exiting on its own, an unexpected error) to stop in order.
 */
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { PilotConfig } from '../config/types.js';
import type { ExitInfo, HaproxyMaster } from '../haproxy/master.js';
import { ExitCode, childExitCode, exitCodeFor } from '../init/exit-code.js';
import { describeError, PilotError } from '../errors.js';
import { createReaper } from '../init/reaper.js';
import { loadLibc } from '../init/libc.js';
import { installSignalHandlers, nextIntent, type SignalIntent } from '../init/signals.js';
import { createHaproxyMaster } from '../supervise/haproxy.js';
import { createProgramSupervisor } from '../supervise/programs.js';
import { spawnWithExeca } from '../supervise/child.js';
import { createGenerations } from '../apply/generations.js';
import { createTransaction, type Transaction } from '../apply/transaction.js';
import { ensureServerStateFile, withServerState } from '../apply/server-state.js';
import { openListeners, type ListenerSpec, type Listeners } from '../control/listeners.js';
import { controlRoutes } from '../control/server.js';
import { healthReasons, programReasons, readyReasons } from '../control/health.js';
import { createMetrics } from '../control/metrics.js';
import { createSources } from '../sources/registry.js';
import type { Source } from '../sources/source.js';
import { createPilot, type PassResult } from '../pilot.js';
import { createBuilder, type Builder, type Candidate } from '../candidate.js';
import { statsCredentials } from './stats-password.js';
import { openFilesHardLimit } from '../config/limits.js';
import { probeHaproxy } from './haproxy-features.js';
import { demoPorts, waitForPort } from '../demo/program.js';
import { VERSION } from '../version.js';
import { startSummary } from './summary.js';
import { outputDropped } from '../output.js';
import { createLastGood, type LastGood } from './last-good.js';
import { ensureRunDir } from './run-dir.js';
import { assertCanBind, privilegedPortChecker, readBindAbility } from './privileged-ports.js';
import { createPlanner, type PlanAnswer } from './planner.js';

export interface RunIo {
  log: Logger;
  /** Re-reads the configuration (yaml, *_FILE secrets) for SIGHUP / POST /reload. */
  reloadConfig(): PilotConfig;
  /** Registers the last-resort handler for errors nothing else caught. */
  onFatal(handler: (err: unknown) => void): void;
  /** Reports the error that ends the run (report.ts: stderr, readable on a terminal); default: the log. */
  report?(err: unknown): void;
}

type Ending = { kind: 'stop'; mode: 'graceful' | 'fast'; signal?: string } | { kind: 'haproxy'; exit: ExitInfo } | { kind: 'fatal'; error: unknown };

export async function runCommand(config: PilotConfig, io: RunIo): Promise<number> {
  const { log } = io;
  const reaper = createReaper({ libc: loadLibc, log: log.child({ component: 'reaper' }) });
  reaper.start();

  let end!: (ending: Ending) => void;
  const ended = new Promise<Ending>((resolve) => (end = resolve));
  io.onFatal((error) => end({ kind: 'fatal', error }));

  // Signals are handled from the first moment: a stop asked for during start-up is honoured
  // once the step under way finishes; a reload signal before HAProxy runs has nothing to reload.
  let state: 'running' | 'graceful-stop' | 'fast-stop' = 'running';
  let master: HaproxyMaster | undefined;
  let pilot: ReturnType<typeof createPilot> | undefined;
  const uninstallSignals = installSignalHandlers((intent: SignalIntent, signal: NodeJS.Signals) => {
    const next = nextIntent(state, intent);
    if (next === 'graceful-stop' || next === 'fast-stop') {
      if (next !== state) log.info({ signal }, `${signal}: ${next}`);
      // A stop signal during a graceful stop escalates it: the master's
      // stop('fast') cuts PILOT_STOP_DELAY short and sends SIGTERM at once (shutdown's own
      // stop() call then joins that stop).
      if (next === 'fast-stop' && state === 'graceful-stop') master?.stop('fast').catch(() => {});
      state = next;
      end({ kind: 'stop', mode: next === 'graceful-stop' ? 'graceful' : 'fast', signal });
    } else if (next === 'reload') {
      if (master && pilot) void pilot.request(`signal ${signal}`, { force: true, reread: true });
      else log.warn({ signal }, `${signal} before start-up finished: ignored`);
    } else if (next === 'relay') master?.signal(signal);
    else log.info({ signal }, `${signal} ignored while stopping`);
  }, process, log.child({ component: 'signals' }));

  // Helper programs get the environment without haproxy-pilot's secrets (config.env has none).
  let settings = config;
  const metrics = createMetrics();
  const programs = createProgramSupervisor({
    log: log.child({ component: 'programs' }),
    specs: [],
    spawn: (file, args, options) => spawnWithExeca(file, args, { ...options, env: { ...settings.env } }),
    onRestart: (name) => metrics.programRestarted(name),
  });
  let listeners: Listeners | undefined;
  let sources: Source[] = [];
  let transaction: Transaction | undefined;
  let lastGood: LastGood | undefined;
  let planner: ((body: Buffer) => Promise<PlanAnswer>) | undefined;
  let stopping = false;
  const alive = (): void => {
    if (stopping) throw new PilotError('E_INTERNAL', 'start-up interrupted by a stop');
  };

  /** What the control server reports; parts that are not up yet report so. */
  function window() {
    return {
      log: log.child({ component: 'control' }),
      status: () => ({
        version: VERSION,
        haproxy: master?.status() ?? null,
        lastPass: pilot?.lastPass() ?? null,
        apply: transaction?.status() ?? null,
        sources: pilot?.sources() ?? [],
        excluded: pilot?.excluded() ?? [],
        programs: programs.status(),
      }),
      health: () => {
        const failing = programReasons(programs.status(), settings.health.programFailures);
        const reasons = master && pilot ? healthReasons(master.status(), pilot.lastPass(), pilot.unhealthySources(), failing) : ['starting: HAProxy is not running yet', ...failing];
        // Sources add their own fields (haproxy-api's last_changed, last_service_changed).
        const extra = Object.assign({}, ...sources.map((s) => s.health?.() ?? {})) as Record<string, unknown>;
        // Started from the previous run's config (src/run/last-good.ts): said at once, and among
        // the reasons once something else makes the pilot unhealthy (a source failing too long).
        const serving = pilot ? lastGood?.notice(pilot.snapshots().size) : undefined;
        if (serving) {
          extra.lastApplied = serving;
          if (reasons.length > 0) reasons.push(serving);
        }
        return { ok: reasons.length === 0, reasons, extra };
      },
      plan: (body: Buffer): Promise<PlanAnswer> | PlanAnswer => planner?.(body) ?? { ok: false, error: { code: 'E_INTERNAL', message: 'starting: HAProxy is not running yet' } },
      ready: () => readyReasons(transaction !== undefined, pilot?.sources() ?? sources.map((s) => ({ name: s.name }))),
      reload: () => (master && pilot ? pilot.request('POST /reload', { force: true, reread: true }) : { ok: false, error: 'starting: HAProxy is not running yet' }),
      // last_apply_success follows the last pass, which also counts render failures (as /health).
      metrics: () =>
        metrics.render({
          apply: { ...(transaction?.status() ?? { reloads: 0, runtimeOps: 0, applyFailures: 0 }), lastApply: pilot?.lastPass() },
          sources: pilot?.sources() ?? [],
          haproxy: master?.status() ?? null,
          version: VERSION,
          log: { dropped: outputDropped() },
        }),
    };
  }


  let stopTransaction = (): void => {};
  const started = (async (): Promise<void> => {
    const { runDir } = config.haproxy;
    await ensureRunDir(runDir);
    const features = await probeHaproxy(config.haproxy.bin);
    const bin = features.bin;
    const credentials = await statsCredentials(config.stats);
    if (credentials.generatedFile) {
      log.warn({ file: credentials.generatedFile, user: config.stats.user }, `no STATS_PASSWORD given: the stats page password is in ${credentials.generatedFile}`);
    }

    // Sources, and the listeners they and the control server answer on, before anything runs.
    for (const note of config.notes) log.info(note);
    for (const warning of config.warnings) log.warn(warning);
    sources = await createSources(config.sources.configured, { log });
    const specs: ListenerSpec[] = sources.flatMap((s) => (s.listener ? [{ ...s.listener, owner: `source ${s.name}` }] : []));
    if (!config.control.disabled) specs.unshift({ host: config.control.host, port: config.control.port, routes: controlRoutes(window()), owner: 'PILOT_CONTROL_ADDR' });
    listeners = await openListeners(specs, log.child({ component: 'http' }));

    let builder: Builder = createBuilder({
      config,
      statsPassword: credentials.password,
      hasPrometheus: features.prometheus && config.stats.prometheus,
      demo: demoPorts(config.demo),
      listeners: listeners.addresses.map((a) => ({ address: a.host, port: a.port, owner: a.owner })),
      fdLimit: openFilesHardLimit(),
    });
    let transactionReady!: (t: Transaction | undefined) => void;
    const transactionPromise = new Promise<Transaction | undefined>((resolve) => (transactionReady = resolve));
    stopTransaction = () => transactionReady(undefined);
    const p = createPilot({
      log: log.child({ component: 'loop' }),
      sources,
      // SIGHUP / POST /reload: pilot.yaml, secrets, templates, HAPROXY_CONFIG and programs are read
      // again; the new builder takes effect in commit(), only once its candidate was applied.
      // (Sources keep the settings they started with.)
      builder: async (reread) => {
        if (!reread) return builder;
        const next = io.reloadConfig();
        const nextCredentials = await statsCredentials(next.stats);
        return createBuilder({ ...builder.settings, config: next, statsPassword: nextCredentials.password });
      },
      transaction: {
        plan: (candidate) => transaction?.plan(candidate) ?? 'reload',
        verify: async (candidate) => (await transactionPromise)?.verify(candidate),
        // Passes asked for before HAProxy runs (sources answer during start-up) wait for it.
        apply: async (candidate, reason, options): Promise<PassResult> => {
          const t = await transactionPromise;
          if (!t) return { ok: false, kind: 'none', error: { code: 'E_INTERNAL', message: 'stopping' } };
          // Serving the previous run's config and no source answered yet: nothing to build from.
          const held = lastGood?.hold(p.snapshots().size);
          if (held) return held;
          const result = await t.apply(candidate, reason, options);
          metrics.applied({ ok: result.ok, kind: result.kind, at: result.at + result.durationMs, ...(result.reload ? { reloadMs: result.reload.durationMs } : {}) });
          if (result.kind === 'reload' && result.ok) programs.onHaproxyReload();
          return result;
        },
      },
      commit: (next, candidate) => {
        if (next !== builder) {
          builder = next;
          settings = next.settings.config;
        }
        programs.setSpecs(candidate.programs);
      },
      quietMinMs: config.apply.quietMinMs,
      quietMaxMs: config.apply.quietMaxMs,
      staleAfterMs: config.sources.staleAfterMs,
    });
    pilot = p;

    // The first config HAProxy runs already has what the sources found.
    alive();
    p.startSources();
    await p.firstAnswers(config.apply.quietMaxMs + 5000);
    const stateFile = config.global.serverStateFile ? join(runDir, 'server-state') : undefined;
    if (stateFile) await ensureServerStateFile(stateFile);
    const generations = createGenerations(runDir);
    const checkDeps = { bin, generations, relativePaths: !config.haproxy.userConfig, log: log.child({ component: 'apply' }) };
    const built: Candidate = await p.build();
    // No source answered: the generation the previous run applied, when it may serve (last-good.ts).
    lastGood = createLastGood({ runDir, configured: config.sources.configured, userConfig: config.haproxy.userConfig, log: log.child({ component: 'apply' }) });
    const first = await lastGood.installFirst(checkDeps, built, p.sources(), () => builder.build({ keys: {}, backends: [], files: {}, fileSources: {}, excluded: [] }));
    // A port below 1024 HAProxy may not bind (no CAP_NET_BIND_SERVICE): said now, with the fix,
    // rather than by HAProxy failing to start (privileged-ports.ts).
    const bindAbility = readBindAbility(bin);
    assertCanBind(first.text, bindAbility);
    alive();

    programs.setSpecs(first.programs);
    programs.start();
    // The demo's backend is up before HAProxy's first health check, so the first request is served.
    const demo = builder.settings.demo;
    if (demo) await waitForPort(demo.backendPort, 5000);
    alive();

    const m = createHaproxyMaster({
      bin,
      configPath: generations.liveConfig,
      ...(checkDeps.relativePaths ? { chdir: generations.liveDir } : {}),
      masterSocket: config.haproxy.masterSocket,
      workerSocket: config.haproxy.workerSocket,
      stopDelayMs: config.haproxy.stopDelayMs,
      stopTimeoutMs: config.haproxy.stopTimeoutMs,
      reloadTimeoutMs: config.haproxy.reloadTimeoutMs,
      log: log.child({ component: 'haproxy' }),
      // The embedded template logs to stdout: HAProxy's stderr copies of the same events are dropped.
      logsToStdout: () => !settings.haproxy.userConfig && settings.global.logFormat !== 'none',
    });
    master = m;
    m.exited.then((exit) => end({ kind: 'haproxy', exit }), () => {});
    await m.start();
    metrics.started(Date.now());
    log.info({ version: features.version, config: generations.liveConfig, pid: m.status().masterPid }, 'HAProxy is running');

    const reloader = stateFile ? withServerState(m, { stateFile, configPath: generations.liveConfig, runningConfig: () => generations.previousText() }, log.child({ component: 'apply' })) : m;
    const t = createTransaction({ ...checkDeps, master: reloader, initial: first, ports: privilegedPortChecker(bindAbility) });
    transaction = t;
    planner = createPlanner({
      log: log.child({ component: 'plan' }),
      reloadConfig: io.reloadConfig,
      builder: () => builder,
      snapshots: () => p.snapshots().values(),
      dryRun: (c) => t.dryRun(c),
      liveConfig: join(runDir, 'haproxy.cfg'),
    });
    transactionReady(transaction);
    const where = startSummary(first.text, builder.settings, credentials.generatedFile, listeners.addresses);
    log.info(where.fields, where.message);
  })();

  // Start-up errors end the run like any other ending.
  const startupFailure = started.then(
    () => new Promise<Ending>(() => {}),
    (error: unknown): Ending => ({ kind: 'fatal', error }),
  );
  const ending = await Promise.race([ended, startupFailure]);

  let code: number;
  if (ending.kind === 'fatal') {
    code = exitCodeFor(ending.error);
    // An error raised on purpose (bad config, HAProxy missing) is one line per problem, no stack;
    // anything else is a bug, logged with its stack.
    if (ending.error instanceof PilotError && ending.error.code !== 'E_INTERNAL') {
      if (io.report) io.report(ending.error);
      else log.error({ code: ending.error.code, details: ending.error.details }, describeError(ending.error));
    } else log.fatal({ err: ending.error }, `stopping after an unexpected error: ${describeError(ending.error)}`);
  } else if (ending.kind === 'haproxy') {
    code = childExitCode(ending.exit.code, ending.exit.signal);
    log.error({ exit: ending.exit }, `HAProxy exited on its own (exit code ${code}): stopping`);
  } else code = ExitCode.OK;

  // Stop in order: sources and the loop, the listeners, HAProxy, then the programs.
  const deadline = Date.now() + config.haproxy.stopTimeoutMs;
  stopping = true;
  stopTransaction();
  await pilot?.stop().catch((err) => log.warn({ err }, 'stopping the sources failed'));
  await started.catch(() => {});
  await listeners?.close().catch(() => {});
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
