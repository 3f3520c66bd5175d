/** Helpers for the supervise e2e tests: free ports, temp dirs, tiny HTTP backends and clients. */
import fs from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

export { freePort } from './ports.js';

export async function makeTempDir(prefix: string): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `pilot-${prefix}-`));
  return { dir, cleanup: () => fs.rm(dir, { recursive: true, force: true }) };
}

export interface Backend {
  port: number;
  close(): Promise<void>;
}

/** A Node HTTP backend on 127.0.0.1; `delayMs` makes every answer slow. */
export async function startBackend(
  options: { delayMs?: number; body?: string; onRequest?: (url: string) => void } = {},
): Promise<Backend> {
  const server = http.createServer((req, res) => {
    options.onRequest?.(req.url ?? '');
    const answer = () => {
      res.setHeader('content-type', 'text/plain');
      res.end(options.body ?? `ok ${req.url}\n`);
    };
    if (options.delayMs) setTimeout(answer, options.delayMs);
    else answer();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as net.AddressInfo).port,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

export interface HttpAnswer {
  status: number;
  body: string;
}

/** One GET on a fresh connection (no keep-alive), so each request sees the current listener. */
export function httpGet(port: number, urlPath = '/', timeoutMs = 5000): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: urlPath, agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET :${port}${urlPath} timed out`)));
    req.on('error', reject);
  });
}

/** Poll `check` until it returns a truthy value or the deadline passes. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 10_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastErr: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v) return v;
    } catch (err) {
      lastErr = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}${lastErr ? `: ${String(lastErr)}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** Whether a pid still exists (signal 0). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A minimal HAProxy config: one frontend on `port` proxying to `backendPort`. */
export function proxyConfig(port: number, backendPort: number, extra = ''): string {
  return [
    'global',
    '    hard-stop-after 10s',
    'defaults',
    '    mode http',
    '    option idle-close-on-response',
    '    timeout connect 2s',
    '    timeout client 10s',
    '    timeout server 10s',
    'listen app',
    `    bind 127.0.0.1:${port}`,
    `    server s1 127.0.0.1:${backendPort}`,
    extra,
    '',
  ].join('\n');
}
