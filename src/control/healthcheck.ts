/**
 * `haproxy-pilot healthcheck`: Docker's HEALTHCHECK runs a command, not an HTTP probe, and the
 * image has no curl. Exit 0 when GET /health answers 200, else 1 (Docker treats any other
 * non-zero code as "reserved").
 */
import { request } from 'undici';

export interface HealthcheckOptions {
  timeoutMs?: number;
}

/** `host:port`, `[v6]:port` or an object; the host defaults to 127.0.0.1 for a wildcard bind. */
export function healthUrl(addr: { host: string; port: number } | string): string {
  let host: string;
  let port: number;
  if (typeof addr === 'string') {
    const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(addr.trim());
    if (!m) throw new Error(`not a host:port address: ${JSON.stringify(addr)}`);
    host = m[1] ?? m[2] ?? '';
    port = Number(m[3]);
  } else ({ host, port } = addr);
  // A server bound to every address is reached on loopback.
  if (host === '' || host === '0.0.0.0') host = '127.0.0.1';
  else if (host === '::') host = '::1';
  return `http://${host.includes(':') ? `[${host}]` : host}:${port}/health`;
}

export async function healthcheck(addr: { host: string; port: number } | string, options: HealthcheckOptions = {}): Promise<0 | 1> {
  const timeoutMs = options.timeoutMs ?? 5000;
  try {
    const res = await request(healthUrl(addr), {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body.dump();
    return res.statusCode === 200 ? 0 : 1;
  } catch {
    return 1;
  }
}
