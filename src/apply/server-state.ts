/**
 * The server-state file (`server-state-file` + `load-server-state-from-file global`) carries
 * runtime state — drain/maint set by an operator, weights, health, DNS-resolved addresses —
 * across reloads. HAProxy does not save it itself: we write `show servers state` just before
 * each reload.
 *
 * Quirk: on load HAProxy applies the saved srv_addr/srv_port to the same-named server even when
 * the new config gives it another address (haproxy/haproxy#985; GitLab's 503s after a config
 * change). So a saved line survives only when the new config still gives that server the same
 * address and port, or names it by DNS (then restoring the resolved address is the point).
 */
import { isIP } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { HaproxyMaster } from '../haproxy/master.js';
import { writeAtomic } from './write.js';
import { configSections, isServerSection } from '../haproxy/config-words.js';

const SERVER: ReadonlySet<string> = new Set(['server']);

/** `backend/server` → the address and port the config gives it. */
export function configuredServers(cfg: string): Map<string, { host: string; port: string }> {
  const servers = new Map<string, { host: string; port: string }>();
  for (const section of configSections(cfg, SERVER).filter(isServerSection)) {
    for (const { words } of section.body) {
      if (words[0] !== 'server' || !words[1] || !words[2]) continue;
      const m = /^(.*):(\d+)$/.exec(words[2]);
      if (m) servers.set(`${section.name}/${words[1]}`, { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2]! });
    }
  }
  return servers;
}

/** Keep only the state lines that cannot override what the new config says. */
export function filterServerState(state: string, newConfig: string): string {
  const lines = state.split('\n');
  const servers = configuredServers(newConfig);
  const kept = lines.filter((line, i) => {
    if (i === 0 || line.startsWith('#') || line.trim() === '') return true; // version, header
    // v1 fields: be_id be_name srv_id srv_name srv_addr … srv_fqdn(17) srv_port(18) …
    const f = line.split(' ');
    const configured = servers.get(`${f[1]}/${f[3]}`);
    if (!configured) return false;
    if (isIP(configured.host) === 0) return true;
    return configured.host === f[4] && configured.port === f[18];
  });
  return kept.join('\n');
}

/**
 * A master whose reloads first save the server state (filtered against the config about to be
 * loaded, which the applier has already installed at configPath).
 */
export function withServerState(
  master: HaproxyMaster,
  files: { stateFile: string; configPath: string },
  log: Logger,
): HaproxyMaster {
  return {
    ...master,
    reload: async (reason) => {
      try {
        const [state, cfg] = await Promise.all([master.runtime('show servers state'), readFile(files.configPath, 'utf8')]);
        await writeAtomic(files.stateFile, filterServerState(state, cfg), { mode: 0o600 });
      } catch (err) {
        // Best effort: without it the reload still happens, only runtime state is lost.
        log.warn({ err }, 'could not save the server state before the reload');
      }
      return master.reload(reason);
    },
  };
}

/** HAProxy warns about a missing or empty state file: start with an empty one of version 1. */
export async function ensureServerStateFile(path: string): Promise<void> {
  await writeFile(path, '1\n', { flag: 'wx', mode: 0o600 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
}
