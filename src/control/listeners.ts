/**
 * The pilot's HTTP listeners: the control server and every source's push endpoint, served from
 * route tables. No request can stop the process: a malformed request is a 4xx, a handler that
 * throws is a 500, and sizes, times and connections are bounded.
 *
 * Two tables on one port share one server (haproxy-api's pushes and our control server both
 * default to 7778): it binds the wider address, and routes of a table that asked for a loopback
 * address stay loopback-only there (403 to anyone else) unless a route says `access: 'any'`.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type { Logger } from '../log.js';
import { PilotError } from '../errors.js';
import type { PushRequest, PushResponse, Route } from '../sources/source.js';

export interface ListenerSpec {
  host: string;
  port: number;
  routes: readonly Route[];
  /** Who asked for it, for messages: `PILOT_CONTROL_ADDR`, `SIDECAR_LISTEN`. */
  owner: string;
}

export interface Listeners {
  /** Where each spec ended up (port 0 resolved), in spec order. */
  addresses: { owner: string; host: string; port: number }[];
  close(): Promise<void>;
}

/** What one client can make an HTTP listener hold. */
export interface ListenerLimits {
  /** Request line plus headers; larger answers 431. */
  maxHeaderBytes: number;
  /** Open connections; more are closed at once. */
  maxConnections: number;
  /** Time to send the request line and headers (slowloris); then 408 and close. */
  headersTimeoutMs: number;
  /** Time to send the whole request. */
  requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this long. */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: ListenerLimits = { maxHeaderBytes: 8 * 1024, maxConnections: 64, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 5_000 };
const DEFAULT_MAX_BODY = 1024 * 1024;

const isAny = (h: string): boolean => h === '0.0.0.0' || h === '::' || h === '';
const isLoopback = (a: string): boolean => a === '::1' || a.startsWith('127.') || a.startsWith('::ffff:127.');

interface Served {
  route: Route;
  loopbackOnly: boolean;
}

interface Group {
  host: string;
  port: number;
  specs: ListenerSpec[];
  routes: Map<string, Served & { owner: string }>;
}

/** Specs on one port whose addresses overlap share a server; the first wildcard host wins. */
export function groupSpecs(specs: readonly ListenerSpec[]): Group[] {
  const groups: Group[] = [];
  const errors: string[] = [];
  for (const spec of specs) {
    const group = groups.find((g) => g.port === spec.port && spec.port !== 0 && (g.host === spec.host || isAny(g.host) || isAny(spec.host)));
    if (group) {
      if (isAny(spec.host) && !isAny(group.host)) group.host = spec.host;
      group.specs.push(spec);
    } else groups.push({ host: spec.host, port: spec.port, specs: [spec], routes: new Map() });
  }
  for (const g of groups) {
    for (const spec of g.specs) {
      for (const route of spec.routes) {
        const key = `${route.method} ${route.path}`;
        const other = g.routes.get(key);
        if (other) {
          errors.push(`${spec.owner}: ${key} on port ${g.port} is already served for ${other.owner}`);
          continue;
        }
        const loopbackOnly = route.access === 'loopback' || (route.access === undefined && isLoopback(spec.host) && !isLoopback(g.host));
        g.routes.set(key, { route, loopbackOnly, owner: spec.owner });
      }
    }
  }
  if (errors.length > 0) throw new PilotError('E_CONFIG', errors.join('\n'));
  return groups;
}

function send(res: ServerResponse, answer: PushResponse): void {
  if (res.headersSent || res.destroyed) return;
  const text = answer.body === undefined ? '' : typeof answer.body === 'string' ? answer.body : `${JSON.stringify(answer.body, null, 2)}\n`;
  const type = typeof answer.body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8';
  res.writeHead(answer.status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(text), ...(answer.headers ?? {}) });
  res.end(res.req.method === 'HEAD' ? undefined : text);
}

const problem = (status: number, error: string, headers?: Record<string, string>): PushResponse => ({ status, body: { ok: false, error }, ...(headers ? { headers } : {}) });

/** Past this much, an oversized body is not read to its end: the connection is cut instead. */
const DRAIN_MAX = 64 * 1024 * 1024;

/**
 * Reads the body up to `limit` bytes; undefined as soon as it is known to be larger (declared or
 * counted), so the 413 goes out at once. The rest keeps being read and dropped (up to DRAIN_MAX)
 * on a connection left open, so the client gets to read the answer rather than a connection
 * reset (Sidecar would retry a reset, not a 413).
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = Number(req.headers['content-length'] ?? 0);
    if (!(size > limit)) size = 0;
    else resolve(undefined);
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= limit) chunks.push(chunk);
      else if (size > DRAIN_MAX) req.destroy();
      else resolve(undefined);
    });
    req.on('end', () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.on('close', () => resolve(size > limit ? undefined : Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function handler(group: Group, log: Logger) {
  return async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let url: URL;
    try {
      // An absolute-form target that does not parse (`GET http://[::1/`) is the client's error.
      url = new URL(req.url ?? '/', 'http://pilot');
    } catch {
      req.resume();
      return send(res, problem(400, 'the request target is not a valid URL'));
    }
    const method = req.method === 'HEAD' ? 'GET' : (req.method ?? 'GET');
    const served = group.routes.get(`${method} ${url.pathname}`);
    if (!served) {
      req.resume();
      const allowed = ['GET', 'POST'].filter((m) => group.routes.has(`${m} ${url.pathname}`));
      if (allowed.length > 0) return send(res, problem(405, `${req.method} not allowed on ${url.pathname}`, { allow: allowed.join(', ') }));
      return send(res, problem(404, `no such path: ${url.pathname}`));
    }
    const remoteAddress = req.socket.remoteAddress ?? '';
    if (served.loopbackOnly && !isLoopback(remoteAddress)) {
      req.resume();
      return send(res, problem(403, `${url.pathname} answers on the loopback interface only`));
    }
    const limit = served.route.maxBodyBytes ?? DEFAULT_MAX_BODY;
    const body = await readBody(req, limit);
    if (body === undefined) {
      log.warn({ remote: remoteAddress, path: url.pathname, limit }, `${served.owner}: refused ${req.method} ${url.pathname}: the body is larger than ${limit} bytes (413)`);
      return send(res, problem(413, `the body is larger than ${limit} bytes`));
    }
    const request: PushRequest = { method: req.method ?? 'GET', path: url.pathname, query: url.searchParams, headers: req.headers, body, remoteAddress };
    send(res, await served.route.handle(request));
  };
}

async function listen(group: Group, limits: ListenerLimits, log: Logger): Promise<Server> {
  const handle = handler(group, log);
  const server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: Math.max(limits.requestTimeoutMs, limits.headersTimeoutMs),
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // How often the header/request timeouts are checked (Node's default is 30 s).
      connectionsCheckingInterval: Math.max(100, Math.min(1000, Math.floor(limits.headersTimeoutMs / 2))),
    },
    (req, res) => {
    handle(req, res).catch((err: unknown) => {
      log.error({ err, method: req.method, url: req.url?.slice(0, 200) }, 'an HTTP handler failed');
      if (!res.headersSent) send(res, problem(500, err instanceof Error ? err.message : String(err)));
      else res.destroy();
    });
    },
  );
  server.maxConnections = limits.maxConnections;
  // Malformed HTTP (bad request line, oversized headers): answer and close, never throw.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    if (socket.writable && err.code !== 'ECONNRESET') {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void =>
      reject(new PilotError('E_CONFIG', `${group.specs.map((s) => s.owner).join(' and ')} ${group.host}:${group.port}: cannot listen (${err.code ?? err.message})`, { cause: err }));
    server.once('error', onError);
    server.listen({ host: group.host, port: group.port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log.error({ err }, 'HTTP listener error'));
  return server;
}

export async function openListeners(specs: readonly ListenerSpec[], log: Logger, overrides: Partial<ListenerLimits> = {}): Promise<Listeners> {
  const limits = { ...DEFAULT_LIMITS, ...overrides };
  const groups = groupSpecs(specs);
  const servers: Server[] = [];
  const close = async (): Promise<void> => {
    await Promise.all(
      servers.map(
        (s) =>
          new Promise<void>((resolve) => {
            s.close(() => resolve());
            // Keep-alive connections (probes, Prometheus) would hold close() open until they time out.
            s.closeAllConnections();
          }),
      ),
    );
  };
  try {
    for (const g of groups) servers.push(await listen(g, limits, log));
  } catch (err) {
    await close();
    throw err;
  }
  const addresses = specs.map((spec) => {
    const i = groups.findIndex((g) => g.specs.includes(spec));
    const addr = servers[i]!.address() as AddressInfo;
    return { owner: spec.owner, host: addr.address, port: addr.port };
  });
  for (const a of addresses) log.info(a, `${a.owner}: listening on ${a.host}:${a.port}`);
  return { addresses, close };
}
