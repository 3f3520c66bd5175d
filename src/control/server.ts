/**
 * The control HTTP server (PILOT_CONTROL_ADDR): what orchestrators and humans ask the pilot.
 *   GET  /health, /ready  200 {ok:true} | 503 {ok:false, reasons}  (Docker HEALTHCHECK, probes)
 *   GET  /status          the loop's status as JSON
 *   POST /reload          re-render and reload now; answers the result
 *   GET  /metrics         haproxy-pilot's own counters, Prometheus text
 * Everything it reports comes from injected functions: the server holds no state of its own.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { PilotError } from '../errors.js';
import { formatMetrics, METRICS_CONTENT_TYPE, type MetricsSnapshot } from './metrics.js';

type MaybePromise<T> = T | Promise<T>;

export interface HealthReport {
  ok: boolean;
  reasons: string[];
}

export interface ControlServerOptions {
  host: string;
  port: number;
  status: () => MaybePromise<unknown>;
  /** A report, or just the reasons for being unhealthy (none: healthy). */
  health: () => MaybePromise<HealthReport | string[]>;
  /** Its result is sent back; `{ ok: false }` answers 500. */
  reload: () => MaybePromise<unknown>;
  /** Prometheus text as is, or a snapshot formatted by formatMetrics(). */
  metrics: () => MaybePromise<string | MetricsSnapshot>;
  log: Logger;
}

export interface ControlServer {
  address: { host: string; port: number };
  close(): Promise<void>;
}

type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<void>;

function send(res: ServerResponse, code: number, body: string, contentType: string, extra: Record<string, string> = {}): void {
  res.writeHead(code, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body), ...extra });
  res.end(res.req.method === 'HEAD' ? undefined : body);
}

function sendJson(res: ServerResponse, code: number, value: unknown, extra: Record<string, string> = {}): void {
  send(res, code, `${JSON.stringify(value, null, 2)}\n`, 'application/json; charset=utf-8', extra);
}

export function normaliseHealth(h: HealthReport | string[]): HealthReport {
  return Array.isArray(h) ? { ok: h.length === 0, reasons: h } : h;
}

export async function startControlServer(options: ControlServerOptions): Promise<ControlServer> {
  const { log } = options;

  const health: Handler = async (_req, res) => {
    const report = normaliseHealth(await options.health());
    sendJson(res, report.ok ? 200 : 503, report.ok ? { ok: true } : { ok: false, reasons: report.reasons });
  };

  const routes: Record<string, Record<string, Handler>> = {
    '/health': { GET: health },
    '/ready': { GET: health },
    '/status': { GET: async (_req, res) => sendJson(res, 200, await options.status()) },
    '/metrics': {
      GET: async (_req, res) => {
        const m = await options.metrics();
        send(res, 200, typeof m === 'string' ? m : formatMetrics(m), METRICS_CONTENT_TYPE);
      },
    },
    '/reload': {
      POST: async (req, res) => {
        log.info({ remote: req.socket.remoteAddress }, 'reload requested over HTTP');
        const result = await options.reload();
        const failed = typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false;
        sendJson(res, failed ? 500 : 200, result ?? { ok: true });
      },
    },
  };

  const server = createServer((req, res) => {
    // Request bodies are not used; drain them so keep-alive connections stay usable.
    req.resume();
    const path = new URL(req.url ?? '/', 'http://control').pathname;
    const route = routes[path];
    if (!route) return sendJson(res, 404, { ok: false, error: `no such path: ${path}` });
    const method = req.method === 'HEAD' && route.GET ? 'GET' : (req.method ?? 'GET');
    const handler = route[method];
    if (!handler) {
      const allow = Object.keys(route).join(', ');
      return sendJson(res, 405, { ok: false, error: `${req.method} not allowed on ${path}` }, { allow });
    }
    handler(req, res).catch((err: unknown) => {
      log.error({ err, path }, `control ${req.method} ${path} failed`);
      if (!res.headersSent) sendJson(res, 500, { ok: false, error: err instanceof Error ? err.message : String(err) });
      else res.destroy();
    });
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException) =>
      reject(new PilotError('E_CONFIG', `PILOT_CONTROL_ADDR ${options.host}:${options.port}: cannot listen (${err.code ?? err.message})`, { cause: err }));
    server.once('error', onError);
    server.listen({ host: options.host, port: options.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'control server error'));
  const addr = server.address() as AddressInfo;
  log.info({ host: addr.address, port: addr.port }, 'control server listening');

  return {
    address: { host: addr.address, port: addr.port },
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Keep-alive connections (probes, Prometheus) would hold close() open until they time out.
        server.closeAllConnections();
      }),
  };
}
