/**
 * The control server (PILOT_CONTROL_ADDR): what orchestrators and humans ask the pilot.
 *   GET  /health          200 {ok:true} | 503 {ok:false, reasons}: is everything running as it should (Docker HEALTHCHECK, liveness)
 *   GET  /ready           200 | 503 with reasons: the first config is applied and every source answered once (readiness)
 *   GET  /status          the loop's status as JSON
 *   POST /reload          re-render and reload now; answers the result
 *   POST /plan            what applying now would do, applying nothing (`haproxy-pilot plan`)
 *   GET  /metrics         haproxy-pilot's own metrics, Prometheus text
 * Everything it reports comes from injected functions: the server holds no state of its own.
 * The listener it runs on (control/listeners.ts) bounds sizes, times and connections, and no
 * request can stop the process; POST /reload is spaced: requests that arrive while one waits for
 * its turn share it.
 */
import type { Logger } from '../log.js';
import type { PushResponse, Route } from '../sources/source.js';
import { openListeners, type ListenerLimits } from './listeners.js';
import { formatMetrics, METRICS_CONTENT_TYPE, type MetricsSnapshot } from './metrics.js';
import { outputDropped } from '../output.js';

type MaybePromise<T> = T | Promise<T>;

export interface HealthReport {
  ok: boolean;
  reasons: string[];
  /** Extra fields for the answer (haproxy-api's `last_changed`, `last_service_changed`). */
  extra?: Record<string, unknown>;
}

export interface ControlServerOptions {
  host: string;
  port: number;
  status: () => MaybePromise<unknown>;
  /** A report, or just the reasons for being unhealthy (none: healthy). */
  health: () => MaybePromise<HealthReport | string[]>;
  /** The reasons for not being ready yet; without it /ready answers as /health. */
  ready?: () => MaybePromise<HealthReport | string[]>;
  /** POST /plan: the body (a snapshot file's text, or empty) → the plan as JSON; `{ok:false}` answers 500. */
  plan?: (body: Buffer) => MaybePromise<unknown>;
  /** Its result is sent back; `{ ok: false }` answers 500. */
  reload: () => MaybePromise<unknown>;
  /** Prometheus text as is, or a snapshot formatted by formatMetrics(). */
  metrics: () => MaybePromise<string | MetricsSnapshot>;
  log: Logger;
  /** Listener limits, and POST /reload's spacing (at least this long between two reloads it starts, default 1 s). */
  limits?: Partial<ListenerLimits> & { reloadMinIntervalMs?: number; maxBodyBytes?: number };
  /** Output lines dropped so far (default: the process's stdout/stderr writers). */
  logDropped?: () => number;
}

/** The control endpoints read no body: anything larger than this is refused (413). */
const CONTROL_MAX_BODY = 64 * 1024;

export interface ControlServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

export function normaliseHealth(h: HealthReport | string[]): HealthReport {
  return Array.isArray(h) ? { ok: h.length === 0, reasons: h } : h;
}

/** The control server's routes: /health and /ready answer anyone, the rest its own address only. */
export function controlRoutes(options: Omit<ControlServerOptions, 'host' | 'port'>): Route[] {
  const { log } = options;
  const minInterval = options.limits?.reloadMinIntervalMs ?? 1000;
  const maxBody = options.limits?.maxBodyBytes ?? CONTROL_MAX_BODY;
  // POST /reload: at most one reload starts per minInterval; requests that arrive while one waits
  // for its turn share it and its answer. (The loop behind reload() also coalesces: every caller
  // gets the result of a pass that started after it asked.)
  let lastReloadAt = Number.NEGATIVE_INFINITY;
  let nextReload: Promise<unknown> | undefined;
  const sharedReload = (): Promise<unknown> => {
    nextReload ??= (async () => {
      await new Promise((r) => setTimeout(r, Math.max(0, lastReloadAt + minInterval - Date.now())));
      nextReload = undefined;
      lastReloadAt = Date.now();
      return options.reload();
    })();
    return nextReload;
  };
  const answer = async (get: () => MaybePromise<HealthReport | string[]>): Promise<PushResponse> => {
    const report = normaliseHealth(await get());
    return { status: report.ok ? 200 : 503, body: report.ok ? { ok: true, ...(report.extra ?? {}) } : { ok: false, reasons: report.reasons, ...(report.extra ?? {}) } };
  };
  const plan = options.plan;
  return [
    { method: 'GET', path: '/health', access: 'any', maxBodyBytes: maxBody, handle: () => answer(options.health) },
    { method: 'GET', path: '/ready', access: 'any', maxBodyBytes: maxBody, handle: () => answer(options.ready ?? options.health) },
    { method: 'GET', path: '/status', maxBodyBytes: maxBody, handle: async () => ({ status: 200, body: await options.status() }) },
    {
      method: 'GET',
      path: '/metrics',
      maxBodyBytes: maxBody,
      handle: async () => {
        const m = await options.metrics();
        const dropped = { dropped: (options.logDropped ?? outputDropped)() };
        return { status: 200, body: typeof m === 'string' ? m : await formatMetrics({ log: dropped, ...m }), headers: { 'content-type': METRICS_CONTENT_TYPE } };
      },
    },
    ...(plan
      ? [
          {
            method: 'POST' as const,
            path: '/plan',
            // It re-reads the settings and renders: never for anyone but this host, whatever the address.
            access: 'loopback' as const,
            maxBodyBytes: 16 * 1024 * 1024,
            handle: async (req: { body: Buffer }) => {
              const result = await plan(req.body);
              const failed = typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false;
              return { status: failed ? 500 : 200, body: result };
            },
          },
        ]
      : []),
    {
      method: 'POST',
      path: '/reload',
      maxBodyBytes: maxBody,
      handle: async (req) => {
        log.info({ remote: req.remoteAddress }, 'reload requested over HTTP');
        const result = await sharedReload();
        const failed = typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false;
        return { status: failed ? 500 : 200, body: result ?? { ok: true } };
      },
    },
  ];
}

/** The control server alone on its address (tests; run.ts shares listeners with the sources). */
export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const listeners = await openListeners([{ host: options.host, port: options.port, routes: controlRoutes(options), owner: 'PILOT_CONTROL_ADDR' }], options.log, options.limits);
  const addr = listeners.addresses[0]!;
  return { address: { host: addr.host, port: addr.port }, close: listeners.close };
}
