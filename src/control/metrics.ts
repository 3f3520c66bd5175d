/**
 * haproxy-pilot's own metrics (GET /metrics on the control server), with prom-client: how the
 * pilot itself is doing. HAProxy's traffic metrics come from its built-in exporter on the stats
 * port. Every name starts with haproxy_pilot_, and no label takes a value that changes with the
 * configuration (no config hash, no server names): series stay few and stable.
 *
 * Two kinds of input: events (an apply finished, a program restarted) counted as they happen,
 * and a snapshot of the pilot's state read at scrape time (sources, HAProxy's workers).
 * One registry per pilot (no prom-client global).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface MetricsSnapshot {
  apply?: {
    reloads: number;
    runtimeOps: number;
    applyFailures: number;
    lastApply?: { ok: boolean };
  };
  /** Per source; `errors` is the number of failed reads since start, when the loop counts them. */
  sources?: readonly { name: string; ok: boolean; stale: boolean; errors?: number; lastSuccessAt?: number }[];
  /** HAProxy's processes, from the master's `show proc`. */
  haproxy?: { workers: readonly unknown[]; oldWorkers?: readonly unknown[] } | null;
  /** haproxy-pilot's version, for build_info. */
  version?: string;
  /** Lines (log and program output) dropped because stdout/stderr was not being read (when the output is bounded). */
  log?: { dropped: number };
}

export interface AppliedEvent {
  ok: boolean;
  kind: 'none' | 'runtime' | 'reload';
  /** When it finished (ms since epoch). */
  at: number;
  /** How long the master took to confirm the reload, when there was one. */
  reloadMs?: number;
}

export interface PilotMetrics {
  /** An apply finished (every pass that reached the applier). */
  applied(event: AppliedEvent): void;
  /** HAProxy started with its first config (a successful apply too). */
  started(at: number): void;
  programRestarted(name: string): void;
  /** The exposition text, gauges read from `snapshot` now. */
  render(snapshot: MetricsSnapshot): Promise<string>;
  readonly contentType: string;
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PREFIX = 'haproxy_pilot_';

export function createMetrics(options: { processMetrics?: boolean } = {}): PilotMetrics {
  const registry = new Registry();
  // prom-client samples the event loop delay with a native timer, every 10 ms by default: 100
  // wake-ups a second, ~0.35 CPU s per minute of an idle pilot (bench/idle.ts). Once a second
  // still shows a stalled loop and costs ~0.05 s per minute.
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: PREFIX, eventLoopMonitoringPrecision: 1000 });
  let snapshot: MetricsSnapshot = {};
  const registers = [registry];

  // From the snapshot, read at scrape time. Counters the loop keeps are set as they are.
  const counterOf = (name: string, help: string, value: (s: MetricsSnapshot) => number) =>
    new Counter({
      name: PREFIX + name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(value(snapshot));
      },
    });
  counterOf('reloads_total', 'HAProxy reloads confirmed by the master.', (s) => s.apply?.reloads ?? 0);
  counterOf('apply_failures_total', 'Applies that failed and kept the running config.', (s) => s.apply?.applyFailures ?? 0);
  counterOf('runtime_ops_total', 'Runtime API commands sent instead of reloads.', (s) => s.apply?.runtimeOps ?? 0);
  counterOf('log_dropped_total', 'Log and program output lines dropped because stdout/stderr was full (not read).', (s) => s.log?.dropped ?? 0);
  new Counter({
    name: `${PREFIX}source_errors_total`,
    help: 'Failed reads per discovery source.',
    labelNames: ['source'],
    registers,
    collect() {
      this.reset();
      for (const src of snapshot.sources ?? []) this.inc({ source: src.name }, src.errors ?? 0);
    },
  });
  const perSource = (name: string, help: string, value: (s: NonNullable<MetricsSnapshot['sources']>[number]) => number | undefined) =>
    new Gauge({
      name: PREFIX + name,
      help,
      labelNames: ['source'],
      registers,
      collect() {
        this.reset();
        for (const src of snapshot.sources ?? []) {
          const v = value(src);
          if (v !== undefined) this.set({ source: src.name }, v);
        }
      },
    });
  perSource('source_up', '1 when the last read of the source succeeded.', (s) => (s.ok ? 1 : 0));
  perSource('source_stale', '1 when the source serves its last good snapshot after errors.', (s) => (s.stale ? 1 : 0));
  perSource('source_last_success_timestamp_seconds', 'When the source last answered successfully (seconds since epoch).', (s) => (s.lastSuccessAt === undefined ? undefined : s.lastSuccessAt / 1000));
  new Gauge({
    name: `${PREFIX}last_apply_success`,
    help: '1 when the last apply succeeded.',
    registers,
    collect() {
      // No apply yet counts as success: HAProxy runs the checked initial config.
      this.set(snapshot.apply?.lastApply && !snapshot.apply.lastApply.ok ? 0 : 1);
    },
  });
  new Gauge({
    name: `${PREFIX}haproxy_workers`,
    help: "HAProxy worker processes: `current` serve, `old` finish their connections after a reload.",
    labelNames: ['state'],
    registers,
    collect() {
      this.reset();
      const h = snapshot.haproxy;
      if (!h) return;
      this.set({ state: 'current' }, h.workers.length);
      this.set({ state: 'old' }, h.oldWorkers?.length ?? 0);
    },
  });
  new Gauge({
    name: `${PREFIX}build_info`,
    help: "haproxy-pilot's version.",
    labelNames: ['version'],
    registers,
    collect() {
      this.reset();
      this.set({ version: snapshot.version ?? '' }, 1);
    },
  });

  // Events.
  const applies = new Counter({ name: `${PREFIX}applies_total`, help: 'Applies by what they took (none, runtime, reload) and their outcome (success, failure).', labelNames: ['kind', 'outcome'], registers });
  for (const kind of ['none', 'runtime', 'reload']) for (const outcome of ['success', 'failure']) applies.inc({ kind, outcome }, 0);
  const lastSuccess = new Gauge({ name: `${PREFIX}last_apply_success_timestamp_seconds`, help: 'When an apply last succeeded (seconds since epoch); the first config counts.', registers });
  const reloadSeconds = new Histogram({
    name: `${PREFIX}reload_duration_seconds`,
    help: 'From asking the HAProxy master to reload to its confirmation.',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  });
  const restarts = new Counter({ name: `${PREFIX}program_restarts_total`, help: 'Restarts of helper programs after they exited, by program.', labelNames: ['program'], registers });

  return {
    applied(e) {
      applies.inc({ kind: e.kind, outcome: e.ok ? 'success' : 'failure' });
      if (e.ok) lastSuccess.set(e.at / 1000);
      if (e.reloadMs !== undefined) reloadSeconds.observe(e.reloadMs / 1000);
    },
    started(at) {
      lastSuccess.set(at / 1000);
    },
    programRestarted(name) {
      restarts.inc({ program: name });
    },
    async render(s) {
      snapshot = s;
      return registry.metrics();
    },
    contentType: METRICS_CONTENT_TYPE,
  };
}

/** The exposition of a snapshot alone (no events, no process metrics): for tests and simple uses. */
export function formatMetrics(m: MetricsSnapshot): Promise<string> {
  return createMetrics({ processMetrics: false }).render(m);
}
