/**
 * A stand-in for the pilot's push listener, so a source's `listener.routes` can be tested over
 * real HTTP before the core refactor provides the real one (the lead replaces this). It follows
 * the contract (notes/contracts.md, SourceRoute): exact path match, 404/405 otherwise, bodies above
 * `maxBodyBytes` (default 1 MiB) answered 413 before the handler runs, a handler that throws
 * answered 500, JSON bodies.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { PushRequest, PushResponse, SourceRoute } from '../../src/sources/sidecar/push.js';

export interface PushListener {
  url: string;
  port: number;
  /** One line per request: `METHOD /path -> status`. */
  log: string[];
  close(): Promise<void>;
}

const DEFAULT_MAX = 1024 * 1024;
// An over-limit body is read and discarded (so the client sees the 413 rather than a reset) up to this much.
const DRAIN_MAX = 64 * 1024 * 1024;

function send(res: ServerResponse, r: PushResponse): void {
  const headers: Record<string, string> = { ...(r.headers ?? {}) };
  if (r.body === undefined) {
    res.writeHead(r.status, headers).end();
    return;
  }
  headers['content-type'] ??= 'application/json';
  res.writeHead(r.status, headers).end(JSON.stringify(r.body));
}

async function readBody(req: IncomingMessage, max: number): Promise<Buffer | 'too-large'> {
  const declared = Number(req.headers['content-length'] ?? '0');
  const chunks: Buffer[] = [];
  let size = 0;
  let tooLarge = declared > max;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > max) tooLarge = true;
    if (size > DRAIN_MAX) {
      req.destroy();
      break;
    }
    if (!tooLarge) chunks.push(chunk as Buffer);
  }
  return tooLarge ? 'too-large' : Buffer.concat(chunks);
}

export async function servePushRoutes(routes: readonly SourceRoute[], options: { host?: string; port?: number } = {}): Promise<PushListener> {
  const lines: string[] = [];
  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://listener');
    const answer = (r: PushResponse): void => {
      lines.push(`${req.method} ${url.pathname} -> ${r.status}`);
      send(res, r);
    };
    const samePath = routes.filter((r) => r.path === url.pathname);
    const route = samePath.find((r) => r.method === req.method);
    if (route === undefined) {
      req.resume();
      answer(samePath.length === 0 ? { status: 404, body: { errors: ['not found'] } } : { status: 405, body: { errors: ['method not allowed'] } });
      return;
    }
    const max = route.maxBodyBytes ?? DEFAULT_MAX;
    const body = await readBody(req, max);
    if (body === 'too-large') {
      answer({ status: 413, body: { errors: [`the body is larger than ${max} bytes`] } });
      return;
    }
    const pushRequest: PushRequest = {
      method: req.method ?? 'GET',
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body,
      remoteAddress: req.socket.remoteAddress ?? '',
    };
    let response: PushResponse;
    try {
      response = await route.handle(pushRequest);
    } catch {
      response = { status: 500, body: { errors: ['internal error'] } };
    }
    answer(response);
  }
  const server = createServer((req, res) => {
    handle(req, res).catch(() => res.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    log: lines,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
