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

export interface HealthcheckResult {
  code: 0 | 1;
  /** Why it is unhealthy (the pilot's reasons, or why it could not be asked); empty when healthy. */
  reasons: string[];
}

export async function healthcheck(addr: { host: string; port: number } | string, options: HealthcheckOptions = {}): Promise<0 | 1> {
  return (await healthcheckWithReasons(addr, options)).code;
}

export async function healthcheckWithReasons(addr: { host: string; port: number } | string, options: HealthcheckOptions = {}): Promise<HealthcheckResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const url = healthUrl(addr);
  try {
    const res = await request(url, {
      method: 'GET',
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.body.text();
    if (res.statusCode === 200) return { code: 0, reasons: [] };
    let reasons: string[] = [];
    try {
      const body = JSON.parse(text) as { reasons?: unknown };
      if (Array.isArray(body.reasons)) reasons = body.reasons.map(String);
    } catch {
      /* not JSON */
    }
    return { code: 1, reasons: reasons.length > 0 ? reasons : [`${url} answered ${res.statusCode}`] };
  } catch (err) {
    const e = err as { code?: string; message?: string };
    return { code: 1, reasons: [`cannot reach ${url}: ${e.code ?? e.message ?? String(err)} (is haproxy-pilot running? PILOT_CONTROL_ADDR)`] };
  }
}
