/**
 * Measuring pieces for bench/change-latency.ts: backend HTTP servers that answer their name, a
 * prober that asks HAProxy over fresh connections until the expected server answers, and the
 * statistics of the samples.
 */
import { request, createServer, type Server } from 'node:http';
import { performance } from 'node:perf_hooks';

export interface NamedServers {
  port(name: string): number;
  close(): Promise<void>;
}

/** `count` HTTP servers s0…s<count-1> on 127.0.0.1:<base+k>, each answering its name. */
export async function startNamedServers(count: number, basePort: number): Promise<NamedServers> {
  const servers: Server[] = [];
  for (let k = 0; k < count; k++) {
    const name = `s${k}`;
    const server = createServer((req, res) => {
      req.resume();
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(name);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(basePort + k, '127.0.0.1', () => resolve());
    });
    servers.push(server);
  }
  return {
    port: (name) => basePort + Number(name.slice(1)),
    close: async () => {
      await Promise.all(servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r())))));
    },
  };
}

/** One request on a new connection (agent: false): a kept-alive one could stay on an old worker. */
export function ask(port: number, path: string, host?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, timeout: 2000, headers: host ? { host } : {} }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', () => resolve({ status: 0, body: '' }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
    req.end();
  });
}

/**
 * Ask every `gapMs` until `expected` answers; returns the time (performance.now()) its answer
 * arrived. Throws after `timeoutMs`.
 */
export async function firstServedBy(expected: string, target: { port: number; path?: string; host?: string }, timeoutMs: number, gapMs = 0): Promise<number> {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const r = await ask(target.port, target.path ?? '/', target.host);
    const now = performance.now();
    if (r.status === 200 && r.body === expected) return now;
    if (now > deadline) throw new Error(`${expected} did not answer on :${target.port}${target.path ?? '/'} within ${timeoutMs} ms (last: ${r.status} ${r.body.slice(0, 60)})`);
    if (gapMs > 0) await sleep(gapMs);
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * After `name` was removed: probe until it has not answered for `quietMs` (and at least `minProbes`
 * probes); returns when its last answer arrived (performance.now()), or the first probe's answer
 * when it never answered again. Throws after `timeoutMs`.
 */
export async function lastServedBy(name: string, target: { port: number; path?: string }, timeoutMs: number, quietMs = 300, minProbes = 60): Promise<number> {
  const start = performance.now();
  const deadline = start + timeoutMs;
  let last: number | undefined;
  let first: number | undefined;
  let without = 0;
  for (;;) {
    const r = await ask(target.port, target.path ?? '/');
    const now = performance.now();
    first ??= now;
    if (r.status === 200 && r.body === name) {
      last = now;
      without = 0;
    } else if (r.status === 200) without++;
    if (without >= minProbes && now - (last ?? start) >= quietMs) return last ?? first;
    if (now > deadline) throw new Error(`${name} still answered on :${target.port} after ${timeoutMs} ms`);
  }
}

export { stats, type Stats } from './support-doc.js';
