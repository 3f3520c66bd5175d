/**
 * Seed 002 (Container Cloud HAProxy image): every key directly under the prefix holds
 * `host:port`, e.g. `apps/myapp/containers/one=10.9.1.1:32001`. The image's confd template made
 * one backend of them (`server {{base .Key}} {{.Value}} check`), reached through the default
 * frontend on :5000, so the backends here carry no route.
 */
import type { DiscoveredBackend, DiscoveredServer } from './model.js';
import { toName, validHostPort, validName, showValue, shownKey } from './validate.js';
import { absolutePrefix, type LayoutResult, type Skipped } from './layout.js';
import { describeError } from '../errors.js';

export interface KvLayoutOptions {
  /** The key prefix (OCCS_BACKEND_KEY), with or without leading/trailing '/'. */
  prefix: string;
  /** Snapshot source name stamped on the backends. */
  source: string;
  /** Backend name; default derived from the prefix by kvBackendName. */
  backendName?: string;
}

/**
 * `apps/<app>/containers` (the layout Container Cloud writes) names the backend `<app>`; any
 * other prefix is named by its last segment. Always a safe HAProxy name.
 */
export function kvBackendName(prefix: string): string {
  const parts = prefix.split('/').filter((p) => p !== '');
  if (parts.length >= 2 && parts[0] === 'apps') return toName(parts[1]!);
  return toName(parts[parts.length - 1] ?? 'kv');
}

export function kvLayout(keys: Readonly<Record<string, string>>, options: KvLayoutOptions): LayoutResult {
  const base = absolutePrefix(options.prefix);
  const name = options.backendName ?? kvBackendName(options.prefix);
  const servers: DiscoveredServer[] = [];
  const skipped: Skipped[] = [];
  const seen = new Set<string>();
  for (const key of Object.keys(keys).sort()) {
    if (!key.startsWith(`${base}/`)) continue;
    const rest = key.slice(base.length + 1);
    // confd's `gets "<prefix>/*"` matched direct children only: folder keys and deeper keys
    // are not servers.
    if (rest === '' || rest.includes('/')) continue;
    const value = keys[key]!;
    const what = shownKey(key);
    try {
      const serverName = validName(what, toName(rest));
      if (seen.has(serverName)) {
        skipped.push({ key, reason: `${what}: server name ${showValue(serverName)} is already used by another key` });
        continue;
      }
      const { host, port } = validHostPort(what, value);
      seen.add(serverName);
      servers.push({ name: serverName, host, port });
    } catch (err) {
      skipped.push({ key, reason: describeError(err) });
    }
  }
  const backend: DiscoveredBackend = { name, mode: 'http', servers, source: options.source };
  // An empty prefix still yields the (empty) backend: "a successful read that says empty empties
  // the backend" (DESIGN.md), and the frontend keeps a backend to point at.
  return { backends: [backend], skipped };
}
