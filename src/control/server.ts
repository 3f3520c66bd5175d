/**
 * The control HTTP server (PILOT_CONTROL_ADDR): what orchestrators and humans ask the pilot.
 *   GET  /health, /ready  200 {ok:true} | 503 {ok:false, reasons}  (Docker HEALTHCHECK, probes)
 *   GET  /status          the loop's status as JSON
 *   POST /reload          re-render and reload now; answers the result
 *   GET  /metrics         haproxy-pilot's own counters, Prometheus text
 * Everything it reports comes from injected functions: the server holds no state of its own.
 *
 * Listeners never die: a request that does not parse is a 4xx, a handler error a 500, and no
 * error in request handling reaches the process. Header and body sizes, concurrent connections
 * and the time a client may take to send its request are bounded (see ListenerLimits), and
 * POST /reload is spaced: requests that arrive while one waits for its turn share it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from '../log.js';
import { PilotError } from '../errors.js';
import { formatMetrics, METRICS_CONTENT_TYPE, type MetricsSnapshot } from './metrics.js';
import { outputDropped } from '../output.js';

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
  limits?: Partial<ListenerLimits>;
  /** Output lines dropped so far (default: the process's stdout/stderr writers). */
  logDropped?: () => number;
}

/** What one client can make an HTTP listener hold. */
export interface ListenerLimits {
  /** Request line plus headers; larger answers 431. */
  maxHeaderBytes: number;
  /** Request body; larger answers 413 (the control endpoints read no body). */
  maxBodyBytes: number;
  /** Open connections; more are closed at once. */
  maxConnections: number;
  /** Time to send the request line and headers (slowloris); then 408 and close. */
  headersTimeoutMs: number;
  /** Time to send the whole request. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
  /** POST /reload: at least this long between two reloads it starts; requests meanwhile share the next one. */
  reloadMinIntervalMs: number;
}

export const DEFAULT_LIMITS: ListenerLimits = {
  maxHeaderBytes: 8 * 1024,
  maxBodyBytes: 64 * 1024,
  maxConnections: 64,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  reloadMinIntervalMs: 1_000,
};

/** createServer with the limits applied (for every HTTP listener haproxy-pilot opens). */
export function createLimitedServer(limits: ListenerLimits, handler: (req: IncomingMessage, res: ServerResponse) => void): Server {
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the header/request timeouts are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    handler,
  );
  server.maxConnections = limits.maxConnections;
  return server;
}

export class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** Reads (and discards) a request body, failing with 413 past `max` bytes. */
export function drainBody(req: IncomingMessage, max: number): Promise<void> {
  const declared = Number(req.headers['content-length'] ?? '0');
  if (declared > max) return Promise.reject(new HttpError(413, `request body larger than ${max} bytes`));
  return new Promise((resolve, reject) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > max) {
        req.removeAllListeners('data');
        req.pause();
        reject(new HttpError(413, `request body larger than ${max} bytes`));
      }
    });
    req.on('end', () => resolve());
    req.on('error', (err) => reject(new HttpError(400, `request body: ${err.message}`)));
    req.on('aborted', () => reject(new HttpError(400, 'request aborted')));
  });
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
  const limits: ListenerLimits = { ...DEFAULT_LIMITS, ...options.limits };

  // POST /reload: at most one reload starts per reloadMinIntervalMs; requests that arrive while
  // one waits for its turn share it and its answer. (The loop behind reload() also coalesces:
  // every caller gets the result of a pass that started after it asked.)
  let lastReloadAt = Number.NEGATIVE_INFINITY;
  let nextReload: Promise<unknown> | undefined;
  const sharedReload = (): Promise<unknown> => {
    nextReload ??= (async () => {
      await new Promise((r) => setTimeout(r, Math.max(0, lastReloadAt + limits.reloadMinIntervalMs - Date.now())));
      nextReload = undefined;
      lastReloadAt = Date.now();
      return options.reload();
    })();
    return nextReload;
  };

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
        const log = { dropped: (options.logDropped ?? outputDropped)() };
        send(res, 200, typeof m === 'string' ? m : formatMetrics({ log, ...m }), METRICS_CONTENT_TYPE);
      },
    },
    '/reload': {
      POST: async (req, res) => {
        log.info({ remote: req.socket.remoteAddress }, 'reload requested over HTTP');
        const result = await sharedReload();
        const failed = typeof result === 'object' && result !== null && (result as { ok?: unknown }).ok === false;
        sendJson(res, failed ? 500 : 200, result ?? { ok: true });
      },
    },
  };

  const dispatch = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    // Request bodies are not used; they are read (bounded) so keep-alive connections stay usable.
    await drainBody(req, limits.maxBodyBytes);
    let path: string;
    try {
      path = new URL(req.url ?? '/', 'http://control').pathname;
    } catch {
      throw new HttpError(400, 'the request target is not a valid URL');
    }
    const route = routes[path];
    if (!route) return sendJson(res, 404, { ok: false, error: `no such path: ${path}` });
    const method = req.method === 'HEAD' && route.GET ? 'GET' : (req.method ?? 'GET');
    const handler = route[method];
    if (!handler) {
      const allow = Object.keys(route).join(', ');
      return sendJson(res, 405, { ok: false, error: `${req.method} not allowed on ${path}` }, { allow });
    }
    await handler(req, res);
  };

  const server = createLimitedServer(limits, (req, res) => {
    const failed = (err: unknown): void => {
      try {
        const status = err instanceof HttpError ? err.status : 500;
        if (status === 500) log.error({ err, url: req.url }, `control ${req.method} failed`);
        else log.debug({ status, url: req.url }, `control ${req.method}: ${(err as Error).message}`);
        if (res.headersSent) return void res.destroy();
        // A refused body is not read further: close the connection after the answer.
        if (status === 413) res.shouldKeepAlive = false;
        sendJson(res, status, { ok: false, error: err instanceof Error ? err.message : String(err) });
      } catch {
        res.destroy();
      }
    };
    try {
      dispatch(req, res).catch(failed);
    } catch (err) {
      failed(err);
    }
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
