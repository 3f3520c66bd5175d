/**
 * Variable families: PROGRAM_<NAME>[_OPT], RESOLVER_<NAME>[_OPT] and SERVICE_<NAME>_<OPT>, and
 * their yaml mirrors `programs.<name>.<opt>`, `resolvers.<name>.<opt>`, `services.<name>.<opt>`.
 * Names from the environment are lower-cased; the environment wins per option.
 */
import { splitConfigWords } from '../haproxy/config-words.js';
import type { EnvRow, FamilyTable } from './env-table.js';
import type { Layers, Found } from './layers.js';
import { closest } from './spelling.js';

export interface Member {
  name: string;
  /** `env PROGRAM_WEB` or `pilot.yaml:3 programs.web`. */
  origin: string;
  /** The env spelling of the name (`MY_APP`), when the member has env variables. */
  envName?: string;
}

/**
 * Members of a family. With `base` (PROGRAM_, RESOLVER_), `PREFIX<X>_<OPT>` is an option only
 * when `PREFIX<X>` exists; otherwise it names a member of its own. Without a base (SERVICE_),
 * a variable is an option when it ends in a known option; `SERVICE_<X>_<UNKNOWN>` is an error
 * only when <X> is already a service (so unrelated SERVICE_* variables of a platform are left alone).
 */
export function members(layers: Layers, fam: FamilyTable): Member[] {
  const hasBase = '' in fam.options;
  const opts = Object.keys(fam.options).filter((o) => o !== '').sort((a, b) => b.length - a.length);
  const rests = Object.keys(layers.env)
    .filter((k) => k.startsWith(fam.prefix) && layers.envValue(k) !== undefined)
    .map((k) => k.slice(fam.prefix.length))
    .filter((r) => r.length > 0);
  const byLower = new Map<string, Member>();
  const add = (envName: string): void => {
    const name = envName.toLowerCase();
    if (!byLower.has(name)) byLower.set(name, { name, envName, origin: `env ${fam.prefix}${envName}` });
  };
  if (hasBase) {
    const bases = new Set(rests);
    for (const rest of rests) {
      const opt = opts.find((o) => rest.endsWith(`_${o}`) && bases.has(rest.slice(0, -o.length - 1)));
      if (!opt) add(rest);
    }
  } else {
    const unknown: string[] = [];
    for (const rest of rests) {
      const opt = opts.find((o) => rest.endsWith(`_${o}`) && rest.length > o.length + 1);
      if (opt) add(rest.slice(0, -opt.length - 1));
      else unknown.push(rest);
    }
    for (const rest of unknown) {
      const owner = [...byLower.values()].find((m) => rest.startsWith(`${m.envName}_`));
      if (!owner) continue;
      const known = Object.keys(fam.options).filter((o) => o !== '');
      const near = closest(rest.slice(owner.envName!.length + 1), known);
      const hint = near ? `did you mean ${fam.prefix}${owner.envName}_${near}? ` : '';
      layers.errors.push(`${fam.prefix}${rest}: unknown option of ${fam.prefix}${owner.envName} (${hint}known: ${known.join(', ')})`);
    }
  }
  for (const key of layers.yaml.mapKeys.get(fam.yaml) ?? []) {
    const origin = `${layers.yaml.file}:${key.line} ${fam.yaml}.${key.name}`;
    const existing = byLower.get(key.name);
    if (existing) existing.origin = `${origin} + ${existing.origin}`;
    else byLower.set(key.name, { name: key.name, origin });
  }
  // A yaml entry that is not a map (`services: {x: 1}`) has no option leaves; flag it.
  const yamlMembers = layers.yaml.leaves;
  for (const key of layers.yaml.mapKeys.get(fam.yaml) ?? []) {
    if (yamlMembers.has(`${fam.yaml}.${key.name}`)) {
      layers.yaml.used.add(`${fam.yaml}.${key.name}`);
      layers.errors.push(`${layers.yaml.file}:${key.line} ${fam.yaml}.${key.name}: must be a map of settings`);
    }
  }
  if (layers.yaml.leaves.has(fam.yaml)) {
    layers.yaml.used.add(fam.yaml);
    layers.errors.push(`${layers.yaml.file}:${layers.yaml.leaves.get(fam.yaml)!.line} ${fam.yaml}: must be a map of names`);
  }
  return [...byLower.values()].sort((a, b) => a.name.localeCompare(b.name));
}

/** The raw value of one option of one member: env first, then yaml. */
export function findOption(layers: Layers, fam: FamilyTable, m: Member, opt: string): Found | undefined {
  const row = fam.options[opt] as EnvRow<unknown>;
  const inYaml = m.envName === undefined || layers.yaml.mapKeys.get(fam.yaml)?.some((k) => k.name === m.name);
  const fromYaml = inYaml ? layers.yamlValue(`${fam.yaml}.${m.name}.${row.yaml}`) : undefined;
  if (m.envName !== undefined) {
    const envVar = `${fam.prefix}${m.envName}${opt === '' ? '' : `_${opt}`}`;
    const v = layers.envValue(envVar);
    if (v !== undefined) return { raw: v, where: envVar, fromEnv: true };
  }
  return fromYaml;
}

/** Parsed option value; default when unset; undefined when it has no default. */
export function option<T>(layers: Layers, fam: FamilyTable, m: Member, opt: string): T | undefined {
  const row = fam.options[opt] as EnvRow<T>;
  const found = findOption(layers, fam, m, opt);
  const def = row.default === undefined ? undefined : layers.defaultOf(row, `${fam.prefix}<NAME>_${opt}`);
  if (!found) return def;
  try {
    return row.parse(found.raw, found.where);
  } catch (err) {
    layers.fail(err, found.where);
    return def;
  }
}

/** A command line (a string split with HAProxy's word grammar: quotes and backslashes, no shell) or a yaml argv list. */
export function parseCommand(found: Found): string[] {
  const argv = Array.isArray(found.raw) ? found.raw : splitConfigWords(found.raw);
  return argv.filter((a) => a.length > 0);
}

/** Name of the option's variable or yaml path, for error messages about missing values. */
export function optionWhere(layers: Layers, fam: FamilyTable, m: Member, opt: string): string {
  // Where the value was actually found (the variable, or the yaml file:line of that very key).
  const found = findOption(layers, fam, m, opt);
  if (found) return found.where;
  if (m.envName !== undefined) return `${fam.prefix}${m.envName}${opt === '' ? '' : `_${opt}`}`;
  const row = fam.options[opt] as EnvRow<unknown>;
  return `${m.origin.split(' ')[0]} ${fam.yaml}.${m.name}.${row.yaml}`;
}
