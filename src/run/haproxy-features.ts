/** What the installed HAProxy binary can do, read once from `haproxy -vv` at start, and where it is. */
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
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

/**
 * Where HAProxy is installed but often not on a user's PATH (Debian's /usr/sbin is on root's
 * PATH only), looked in after PATH.
 */
export const SBIN_DIRS = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return statSync(file).isFile();
  } catch {
    return false;
  }
};

/**
 * The HAProxy binary to run: HAPROXY_BIN as a path when it has a '/', else the first match on
 * PATH, then in SBIN_DIRS. Not found: one E_HAPROXY line saying where it looked.
 */
export function resolveHaproxyBin(bin: string, path: string | undefined, isExecutable: (file: string) => boolean = executable): string {
  if (bin.includes('/')) {
    if (isExecutable(bin)) return bin;
    throw new PilotError('E_HAPROXY', `HAProxy not found: HAPROXY_BIN=${bin} is not an executable file`, { details: { bin } });
  }
  const dirs = (path ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, ...SBIN_DIRS.filter((d) => !dirs.includes(d))]) {
    const file = join(dir, bin);
    if (isExecutable(file)) return file;
  }
  throw new PilotError(
    'E_HAPROXY',
    `HAProxy not found: no "${bin}" on PATH (${dirs.join(delimiter) || 'empty'}) nor in ${SBIN_DIRS.join(', ')}: install HAProxy (apt-get install haproxy) or set HAPROXY_BIN to its path`,
    { details: { bin, path: dirs } },
  );
}

export async function probeHaproxy(bin: string, path: string | undefined = process.env.PATH): Promise<HaproxyFeatures & { bin: string }> {
  const file = resolveHaproxyBin(bin, path);
  try {
    const { stdout } = await execa(file, ['-vv'], { timeout: 10_000 });
    return { ...parseFeatures(stdout), bin: file };
  } catch (err) {
    throw new PilotError('E_HAPROXY', `HAProxy at ${file} does not run: "${file} -vv" failed (${(err as { shortMessage?: string }).shortMessage ?? (err as Error).message})`, { cause: err, details: { bin: file } });
  }
}
