/** What the installed HAProxy binary can do, read once from `haproxy -vv` at start. */
import { execa } from 'execa';
import { PilotError } from '../errors.js';

export interface HaproxyFeatures {
  version: string;
  /** "Built with the Prometheus exporter as a service": `http-request use-service prometheus-exporter`. */
  prometheus: boolean;
}

export function parseFeatures(vv: string): HaproxyFeatures {
  const version = /^HA-?Proxy version (\S+)/m.exec(vv)?.[1] ?? 'unknown';
  return { version, prometheus: /Prometheus exporter as a service/.test(vv) };
}

export async function probeHaproxy(bin: string): Promise<HaproxyFeatures> {
  try {
    const { stdout } = await execa(bin, ['-vv'], { timeout: 10_000 });
    return parseFeatures(stdout);
  } catch (err) {
    throw new PilotError('E_HAPROXY', `cannot run "${bin} -vv": is HAProxy installed (HAPROXY_BIN)?`, { cause: err });
  }
}
