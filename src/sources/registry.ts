/**
 * Every source kind, listed once. Adding a kind is its folder and one line here; the order is
 * the order of the README's variable table.
 */
import type { LevelWithSilent } from 'pino';
import type { EnvRow } from '../config/env-table.js';
import type { Layers } from '../config/layers.js';
import type { ConfiguredSource, SourceDeps, SourceKind } from './kind.js';
import type { Source } from './source.js';
import { kvKind } from './kv/kind.js';
import { etcdKind } from './etcd/kind.js';
import { fileKind } from './file/kind.js';
import { zookeeperKind } from './zookeeper/kind.js';
import { sidecarKind } from './sidecar/kind.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- each kind has its own settings type
export const SOURCE_KINDS: readonly SourceKind<any, any>[] = [kvKind, etcdKind, fileKind, zookeeperKind, sidecarKind];

/** The variables every kind owns, by name. */
export function sourceEnvRows(): Record<string, EnvRow<unknown>> {
  return Object.assign({}, ...SOURCE_KINDS.map((k) => k.env)) as Record<string, EnvRow<unknown>>;
}

/** The kinds the configuration turns on, with their settings (problems recorded in L). */
export function loadSources(L: Pick<Layers, 'with'>): ConfiguredSource[] {
  const out: ConfiguredSource[] = [];
  for (const kind of SOURCE_KINDS) {
    const settings = kind.load(L.with(kind.env));
    if (settings !== undefined) out.push({ kind: kind.kind, settings });
  }
  return out;
}

/** What the configured kinds change in the core configuration, and their notes for the log. */
export function sourceAdjustments(configured: readonly ConfiguredSource[]): { logLevel?: LevelWithSilent; globalLines: string[]; notes: string[] } {
  const out: { logLevel?: LevelWithSilent; globalLines: string[]; notes: string[] } = { globalLines: [], notes: [] };
  for (const c of configured) {
    const kind = SOURCE_KINDS.find((k) => k.kind === c.kind);
    const adjust = kind?.adjust?.(c.settings);
    if (adjust?.logLevel) out.logLevel = adjust.logLevel;
    out.globalLines.push(...(adjust?.globalLines ?? []));
    out.notes.push(...(kind?.notes?.(c.settings) ?? []));
  }
  return out;
}

/** The settings of a configured kind, if it is on. */
export function settingsOf<S>(sources: { configured: readonly ConfiguredSource[] }, kind: string): S | undefined {
  return sources.configured.find((c) => c.kind === kind)?.settings as S | undefined;
}

/** One Source per configured kind, in registry order; each kind's dependencies load here. */
export async function createSources(configured: readonly ConfiguredSource[], deps: SourceDeps): Promise<Source[]> {
  const sources: Source[] = [];
  for (const c of configured) {
    const kind = SOURCE_KINDS.find((k) => k.kind === c.kind);
    if (!kind) throw new Error(`unknown source kind ${c.kind}`);
    sources.push(await kind.create(c.settings, deps));
  }
  return sources;
}
