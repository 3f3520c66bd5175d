/**
 * Misspelt variables of the prefixes haproxy-pilot owns are ignored by the loader (it only reads
 * names it knows): say so at start, naming the closest known name. Pure.
 *
 *   PILOT_*                        every unknown name is reported (the prefix is ours alone)
 *   HAPROXY_*, STATS_*, KV_*, …    reported only when a known name is close: HAProxy itself
 *                                  sets HAPROXY_CFGFILES, HAPROXY_LOCALPEER, HAPROXY_MWORKER…,
 *                                  the official image HAPROXY_VERSION/URL/SHA256, haproxy-api
 *                                  HAPROXY_API_*, and orchestrators inject `<SERVICE>_PORT`
 *   PROGRAM_<N>_<OPT>, RESOLVER_…  an option close to a known one (PROGRAM_WEB_RESTRAT) that
 *                                  would otherwise name a program of its own
 *   SERVICE_<N>_<OPT>              a last word close to a known option (SERVICE_WEB_BNID)
 *
 * The prefixes come from the variable tables (core and every source kind), so a new kind's
 * prefix is covered by adding its rows.
 */
import type { FamilyTable } from './env-table.js';

/** Optimal string alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** How far a typo may be from `known` (the part after the shared prefix) to count as one. */
function allowed(known: string): number {
  return known.length <= 3 ? 1 : known.length <= 7 ? 2 : 3;
}

/** The known word closest to `word` within the allowed distance, if any (ties: the first). */
export function closest(word: string, known: Iterable<string>, strip = 0): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    if (k === word) return k;
    const d = editDistance(word.slice(strip), k.slice(strip));
    if (d <= allowed(k.slice(strip)) && d < bestD) {
      best = k;
      bestD = d;
    }
  }
  return best;
}

/** Prefixes where every unknown name is reported, even without a close known name. */
const OURS_ALONE = new Set(['PILOT_']);

export interface SpellingTables {
  /** Every variable name haproxy-pilot reads (core rows and every source kind's). */
  names: Iterable<string>;
  families: readonly FamilyTable[];
}

export function spellingWarnings(env: Readonly<Record<string, string | undefined>>, tables: SpellingTables): string[] {
  const known = new Set(tables.names);
  const byPrefix = new Map<string, string[]>();
  for (const n of known) {
    const m = /^([A-Z0-9]+_)./.exec(n);
    if (!m) continue;
    const list = byPrefix.get(m[1]!) ?? [];
    list.push(n);
    byPrefix.set(m[1]!, list);
  }
  const warnings: string[] = [];
  const names = Object.keys(env).filter((k) => env[k] !== undefined).sort();
  for (const name of names) {
    if (known.has(name)) continue;
    const family = tables.families.find((f) => name.startsWith(f.prefix));
    if (family) {
      const w = familyWarning(env, name, family);
      if (w) warnings.push(w);
      continue;
    }
    const prefix = /^([A-Z0-9]+_)/.exec(name)?.[1];
    const candidates = prefix === undefined ? undefined : byPrefix.get(prefix);
    if (!prefix || !candidates) continue;
    const near = closest(name, candidates, prefix.length);
    if (near) warnings.push(`${name} is not a haproxy-pilot variable and is ignored: did you mean ${near}?`);
    else if (OURS_ALONE.has(prefix)) warnings.push(`${name} is not a haproxy-pilot variable and is ignored (known ${prefix}* variables: ${candidates.join(', ')})`);
  }
  return warnings;
}

function familyWarning(env: Readonly<Record<string, string | undefined>>, name: string, fam: FamilyTable): string | undefined {
  const options = Object.keys(fam.options).filter((o) => o !== '');
  const rest = name.slice(fam.prefix.length);
  const words = rest.split('_');
  const set = (n: string): boolean => env[n] !== undefined && env[n] !== '';
  if ('' in fam.options) {
    // PROGRAM_WEB_RESTRAT next to PROGRAM_WEB: the loader takes it for a program "web_restrat".
    for (let i = words.length - 1; i >= 1; i--) {
      const base = words.slice(0, i).join('_');
      if (!set(`${fam.prefix}${base}`)) continue;
      const opt = words.slice(i).join('_');
      if (options.includes(opt)) return undefined;
      const near = closest(opt, options);
      if (near) return `${name}: not an option of ${fam.prefix}${base}, so it is read as a ${fam.yaml.replace(/s$/, '')} of its own: did you mean ${fam.prefix}${base}_${near}?`;
    }
    return undefined;
  }
  // SERVICE_<NAME>_<OPT>: a name that ends in no known option is ignored unless <NAME> is a
  // service (then the loader reports it); a last word close to an option is a typo.
  if (options.some((o) => rest.endsWith(`_${o}`) && rest.length > o.length + 1)) return undefined;
  for (let i = words.length - 1; i >= 1; i--) {
    const base = words.slice(0, i).join('_');
    // <NAME> is a service: the loader reports the unknown option itself (families.ts).
    if (options.some((o) => set(`${fam.prefix}${base}_${o}`))) return undefined;
    const near = closest(words.slice(i).join('_'), options);
    if (near) return `${name} is ignored: did you mean ${fam.prefix}${base}_${near}?`;
  }
  return undefined;
}
