/**
 * The server-state file (`server-state-file` + `load-server-state-from-file global`) carries
 * runtime state — drain/maint set by an operator, weights, health, DNS-resolved addresses —
 * across reloads. HAProxy does not save it itself: we write `show servers state` just before
 * each reload.
 *
 * Quirk: on load HAProxy applies the saved srv_addr/srv_port to the same-named server even when
 * the new config gives it another address (haproxy/haproxy#985; GitLab's 503s after a config
 * change). So a saved line survives only when the new config still gives that server the same
 * address and port, or names it by DNS with the same name and port (then restoring the resolved
 * address is the point: a reload while DNS does not answer keeps serving, see view.ts's `init-addr`).
 * `server-template` slots count as servers named `<prefix><n>`.
 *
 * Quirk 2: HAProxy restores a saved maint or drain state and weight over the new config when the
 * config's own setting did not change between the two processes' configs as HAProxy *loaded*
 * them (src/server_state.c: `disabled` compared with the saved config flag, the saved weight
 * applied when the loaded weights match). haproxy-pilot changes servers at run time and only
 * rewrites the file, so a server put in maint or drain at run time, then made ready by the pass
 * that reloads, came back in maint or drain. So when the running config (the file, which mirrors
 * the runtime changes) and the new one disagree on a server's `disabled` or weight, or the running
 * config does not have the server (a removed server HAProxy still held), its line is dropped: the
 * new config decides. Operator changes made on the runtime API stay as before.
 */
import { isIP } from 'node:net';
import { readFile, writeFile } from 'node:fs/promises';
import type { Logger } from '../log.js';
import type { HaproxyMaster } from '../haproxy/master.js';
import { writeAtomic } from './write.js';
import { configSections, isServerSection } from '../haproxy/config-words.js';
import { parseServerLine } from './plan.js';

const SERVER: ReadonlySet<string> = new Set(['server', 'server-template']);

/** The names of `server-template <prefix> <count | first-last>`'s slots. */
function templateSlots(prefix: string, spec: string): string[] {
  const m = /^(?:(\d+)-)?(\d+)$/.exec(spec);
  if (!m) return [];
  const [first, last] = m[1] === undefined ? [1, Number(m[2])] : [Number(m[1]), Number(m[2])];
  return Array.from({ length: Math.max(0, last - first + 1) }, (_, i) => `${prefix}${first + i}`);
}

/** `backend/server` → the address and port the config gives it (each slot of a server-template too). */
export function configuredServers(cfg: string): Map<string, { host: string; port: string }> {
  const servers = new Map<string, { host: string; port: string }>();
  for (const section of configSections(cfg, SERVER).filter(isServerSection)) {
    for (const { words } of section.body) {
      const [keyword, name, second, third] = words;
      const [names, address] =
        keyword === 'server' && name && second ? [[name], second]
        : keyword === 'server-template' && name && second && third ? [templateSlots(name, second), third]
        : [[], undefined];
      const m = address === undefined ? null : /^(.*):(\d+)$/.exec(address);
      if (m) for (const n of names) servers.set(`${section.name}/${n}`, { host: m[1]!.replace(/^\[|\]$/g, ''), port: m[2]! });
    }
  }
  return servers;
}

/** `backend/server` → its `disabled` and weight, as the config gives them. */
function adminSettings(cfg: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const section of configSections(cfg).filter(isServerSection)) {
    for (const { words } of section.body) {
      const s = parseServerLine(words);
      if (s) out.set(`${section.name}/${s.name}`, `${s.disabled ? 'disabled' : 'enabled'} weight ${s.weight ?? 1}`);
    }
  }
  return out;
}

/**
 * Keep only the state lines that cannot override what the new config says. `runningConfig`: the
 * config HAProxy runs until this reload, as the file mirrors it (see Quirk 2).
 */
export function filterServerState(state: string, newConfig: string, runningConfig?: string): string {
  const lines = state.split('\n');
  const servers = configuredServers(newConfig);
  const wanted = runningConfig === undefined ? undefined : adminSettings(newConfig);
  const running = runningConfig === undefined ? undefined : adminSettings(runningConfig);
  const kept = lines.filter((line, i) => {
    if (i === 0 || line.startsWith('#') || line.trim() === '') return true; // version, header
    // v1 fields: be_id be_name srv_id srv_name srv_addr … srv_fqdn(17) srv_port(18) …
    const f = line.split(' ');
    const key = `${f[1]}/${f[3]}`;
    const configured = servers.get(key);
    if (!configured) return false;
    if (running !== undefined && running.get(key) !== wanted!.get(key)) return false;
    // v1 fields: srv_addr(4), srv_fqdn(17), srv_port(18).
    return configured.host === f[isIP(configured.host) === 0 ? 17 : 4] && configured.port === f[18];
  });
  return kept.join('\n');
}

/**
 * A master whose reloads first save the server state (filtered against the config about to be
 * loaded, which the applier has already installed at configPath).
 */
export function withServerState(
  master: HaproxyMaster,
  files: { stateFile: string; configPath: string; runningConfig?: () => Promise<string | undefined> },
  log: Logger,
): HaproxyMaster {
  return {
    ...master,
    reload: async (reason) => {
      try {
        const [state, cfg, running] = await Promise.all([master.runtime('show servers state'), readFile(files.configPath, 'utf8'), files.runningConfig?.()]);
        await writeAtomic(files.stateFile, filterServerState(state, cfg, running), { mode: 0o600 });
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
