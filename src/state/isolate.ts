/**
 * One bad entry blocks nothing: when HAProxy (`haproxy -c`) or the port preflight refuses a
 * candidate, find the discovered entries responsible and apply the rest without them. Only a
 * fault in the operator's own config (what is left with every discovered entry taken out) refuses
 * the whole candidate.
 *
 * First the cheap way: HAProxy names the file and line it refused (`parsing [haproxy.cfg:42]`),
 * or the certificate file it could not load, and the section around that line names a discovered
 * backend. When that does not point anywhere, the discovered entries are bisected: each probe is
 * one `haproxy -c` of a candidate without a part of them, so n entries cost about 2·log2(n) checks.
 */
import type { DiscoveredBackend } from './model.js';
import type { DesiredState } from './merge.js';

/** A discovered entry that can be left out: a backend, or a file a source provides. */
export type Entry = { kind: 'backend'; backend: DiscoveredBackend } | { kind: 'file'; path: string; source: string };

export const entryName = (e: Entry): string => (e.kind === 'backend' ? e.backend.name : e.path);
export const entrySource = (e: Entry): string => (e.kind === 'backend' ? e.backend.source : e.source);

export function entriesOf(desired: DesiredState): Entry[] {
  return [
    ...desired.backends.map((backend): Entry => ({ kind: 'backend', backend })),
    ...Object.keys(desired.files).map((path): Entry => ({ kind: 'file', path, source: desired.fileSources[path] ?? 'unknown' })),
  ];
}

/** The desired state without `out`. */
export function without(desired: DesiredState, out: ReadonlySet<Entry>): DesiredState {
  const backends = new Set<DiscoveredBackend>();
  const paths = new Set<string>();
  for (const e of out) (e.kind === 'backend' ? backends.add(e.backend) : paths.add(e.path));
  return {
    ...desired,
    backends: desired.backends.filter((b) => !backends.has(b)),
    files: Object.fromEntries(Object.entries(desired.files).filter(([p]) => !paths.has(p))),
  };
}

/**
 * The entries HAProxy's refusal points at: the discovered backend whose section holds the
 * refused line, or a certificate file it names.
 */
export function pointedAt(entries: readonly Entry[], configText: string, refusal: { line?: number; output?: string; message: string }): Entry[] {
  const out = new Set<Entry>();
  const text = `${refusal.message}\n${refusal.output ?? ''}`;
  for (const e of entries) if (e.kind === 'file' && text.includes(e.path)) out.add(e);
  // The port preflight names the port another process holds: the listen that binds it.
  for (const m of text.matchAll(/binds [^\s]*:(\d+)/g)) {
    for (const e of entries) if (e.kind === 'backend' && e.backend.route?.port === Number(m[1])) out.add(e);
  }
  if (refusal.line !== undefined) {
    const lines = configText.split('\n');
    for (let i = Math.min(refusal.line, lines.length) - 1; i >= 0; i--) {
      const m = /^\s*(backend|listen|frontend)\s+(\S+)/.exec(lines[i]!);
      if (!m) continue;
      const hit = entries.find((e) => e.kind === 'backend' && e.backend.name === m[2]);
      if (hit) out.add(hit);
      break;
    }
  }
  return [...out];
}

/**
 * The smallest set of entries whose removal makes `passes` true, found by bisection; undefined
 * when even removing all of them does not (the operator's config is at fault).
 */
export async function culprits(entries: readonly Entry[], passes: (out: ReadonlySet<Entry>) => Promise<boolean>): Promise<Entry[] | undefined> {
  const all = new Set(entries);
  if (entries.length === 0 || !(await passes(all))) return undefined;
  const search = async (suspects: readonly Entry[], alsoOut: ReadonlySet<Entry>): Promise<Entry[]> => {
    if (suspects.length <= 1) return [...suspects];
    const half = Math.ceil(suspects.length / 2);
    const a = suspects.slice(0, half);
    const b = suspects.slice(half);
    if (await passes(new Set([...alsoOut, ...a]))) return search(a, alsoOut);
    if (await passes(new Set([...alsoOut, ...b]))) return search(b, alsoOut);
    // Both halves hold culprits: find those of a with b out, then those of b with a's out.
    const inA = await search(a, new Set([...alsoOut, ...b]));
    return [...inA, ...(await search(b, new Set([...alsoOut, ...inA])))];
  };
  return search(entries, new Set());
}
