/**
 * Sidecar (seed 000, haproxy-api compatibility): the state read from Sidecar at start, pushes on
 * SIDECAR_LISTEN, follower mode (`-F`), haproxy-api.toml (`-f`).
 */
import type { Layers } from '../../config/layers.js';
import type { SourceKind } from '../kind.js';
import { loadSidecarSettings, SIDECAR_ENV, type SidecarSettings } from './settings.js';

function load(L: Layers<typeof SIDECAR_ENV>): SidecarSettings | undefined {
  try {
    return loadSidecarSettings({
      lookup: (name) => L.find(name),
      args: { rest: [], ...(L.files.flags?.HAPROXY_API_FOLLOW ? { follow: L.files.flags.HAPROXY_API_FOLLOW.value } : {}), ...(L.files.flags?.HAPROXY_API_CONFIG_FILE ? { configFile: L.files.flags.HAPROXY_API_CONFIG_FILE.value } : {}) },
      readFile: (path) => L.files.readFile(path),
    });
  } catch (err) {
    L.fail(err);
    return undefined;
  }
}

export const sidecarKind: SourceKind<SidecarSettings, typeof SIDECAR_ENV> = {
  kind: 'sidecar',
  env: SIDECAR_ENV,
  load,
  notes: (settings) => settings.notes,
  adjust: (settings) => ({
    ...(settings.logLevel ? { logLevel: settings.logLevel } : {}),
    globalLines: [...(settings.haproxyUser ? [`user ${settings.haproxyUser}`] : []), ...(settings.haproxyGroup ? [`group ${settings.haproxyGroup}`] : [])],
  }),
  async create(settings, deps) {
    const { createSidecarSource } = await import('./source.js');
    return createSidecarSource(settings, deps);
  },
};
