/**
 * Merging the sources' latest snapshots into the desired state (pure): raw keys into one map
 * (keys are absolute, each source under its own prefix), backends into one list, files into one
 * set. One bad entry never blocks the others: a backend that would take a name or a port the
 * configuration uses is left out and reported; the same name from two sources is renamed
 * `<source>_<name>`; the second listen on one port is left out.
 */
import type { Snapshot } from '../sources/source.js';
import type { DiscoveredBackend } from './model.js';
import { portOwner, type Reserved } from './reserved.js';

export interface Excluded {
  source: string;
  /** The backend (or key) left out. */
  entry: string;
  reason: string;
}

export interface DesiredState {
  keys: Record<string, string>;
  backends: DiscoveredBackend[];
  /** Files by path relative to the generation folder (`certs/<name>`). */
  files: Record<string, string>;
  /** Which source gave each file. */
  fileSources: Record<string, string>;
  excluded: Excluded[];
}

/** Control characters (newlines above all) never reach a template, even through raw `getv`. */
const UNSAFE_VALUE = /[\x00-\x08\x0a-\x1f\x7f]/;

export function mergeSnapshots(snapshots: Iterable<Snapshot>, reserved: Reserved): DesiredState {
  const keys: Record<string, string> = {};
  const backends: DiscoveredBackend[] = [];
  const files: Record<string, string> = {};
  const fileSources: Record<string, string> = {};
  const excluded: Excluded[] = [];
  const names = new Set<string>();
  /** Listens discovery took, by port (a backend list can hold thousands). */
  const listens = new Map<number, { address: string; owner: string }[]>();
  for (const snap of [...snapshots].sort((a, b) => a.source.localeCompare(b.source))) {
    for (const [key, value] of Object.entries(snap.keys)) if (!UNSAFE_VALUE.test(value)) keys[key] = value;
    for (const [name, data] of Object.entries(snap.files ?? {})) {
      files[`certs/${name}`] = data;
      fileSources[`certs/${name}`] = snap.source;
    }
    for (const backend of snap.backends) {
      const skip = (reason: string): void => void excluded.push({ source: snap.source, entry: backend.name, reason });
      const owner = reserved.names.get(backend.name);
      if (owner !== undefined) {
        skip(`the name is taken by ${owner}`);
        continue;
      }
      const name = names.has(backend.name) ? `${snap.source}_${backend.name}` : backend.name;
      if (names.has(name) || name.length > 63) {
        skip(`another source already has a backend named ${backend.name}`);
        continue;
      }
      const port = backend.route?.port;
      if (port !== undefined) {
        const use = { address: backend.route?.bindAddress ?? '', port };
        const onPort = listens.get(port) ?? [];
        const taken = portOwner(reserved, use) ?? onPort.find((l) => l.address === use.address || l.address === '' || use.address === '')?.owner;
        if (taken !== undefined) {
          skip(`port ${port} is already used by ${taken}`);
          continue;
        }
        onPort.push({ address: use.address, owner: `backend ${name} (source ${snap.source})` });
        listens.set(port, onPort);
      }
      names.add(name);
      backends.push(name === backend.name ? backend : { ...backend, name });
    }
  }
  return { keys, backends, files, fileSources, excluded };
}
