/**
 * Value lookup across the layers: environment > yaml file > built-in default (from the env
 * table). Every failure is collected (not thrown) so that one run reports all of them.
 */
import { PilotError } from '../errors.js';
import { ENV_TABLE, type EnvRow } from './env-table.js';
import type { Raw } from './parse.js';
import { yamlWhere, type YamlTree } from './yaml-file.js';

export interface Found {
  raw: Raw;
  /** The variable name, or `file:line yaml.path`. */
  where: string;
  fromEnv: boolean;
}

export interface FileAccess {
  readFile(path: string): string;
  fileExists(path: string): boolean;
  /** Values given as command-line flags, by the variable they stand for (`-F` → HAPROXY_API_FOLLOW): the strongest layer. */
  flags?: Readonly<Record<string, { value: string; flag: string }>>;
}

/** Rows by variable name: the core table (env-table.ts) or a source kind's own. */
export type EnvTable = Readonly<Record<string, EnvRow<unknown>>>;

export class Layers<T extends EnvTable = typeof ENV_TABLE> {
  readonly errors: string[];

  constructor(
    readonly env: Readonly<Record<string, string | undefined>>,
    readonly yaml: YamlTree,
    readonly files: FileAccess,
    readonly table: T = ENV_TABLE as unknown as T,
    errors: string[] = [],
  ) {
    this.errors = errors;
  }

  /** The same layers read through another table (a source kind's rows); errors are shared. */
  with<U extends EnvTable>(table: U): Layers<U> {
    return new Layers(this.env, this.yaml, this.files, table, this.errors);
  }

  private row(name: string): EnvRow<unknown> {
    const row = this.table[name];
    if (!row) throw new PilotError('E_INTERNAL', `${name} is not in the variable table`);
    return row;
  }

  /** An env var's value; '' counts as unset (`docker run -e X=` is usually a mistake, not a value). */
  envValue(name: string): string | undefined {
    const v = this.env[name];
    return v === undefined || v === '' ? undefined : v;
  }

  yamlValue(path: string): Found | undefined {
    const leaf = this.yaml.leaves.get(path);
    if (!leaf) return undefined;
    this.yaml.used.add(path);
    return { raw: leaf.value, where: yamlWhere(this.yaml, path), fromEnv: false };
  }

  /** First of `names` set in the environment, else the first with a yaml value (aliases have none). */
  find(...names: (keyof T & string)[]): Found | undefined {
    for (const name of names) {
      // A yaml value overridden by the environment is still a known key, not a typo.
      const path = this.row(name).yaml;
      if (path !== undefined && this.yaml.leaves.has(path)) this.yaml.used.add(path);
    }
    for (const name of names) {
      const f = this.files.flags?.[name];
      if (f !== undefined) return { raw: f.value, where: f.flag, fromEnv: true };
    }
    for (const name of names) {
      const v = this.envValue(name);
      if (v !== undefined) return { raw: v, where: name, fromEnv: true };
    }
    for (const name of names) {
      const path = this.row(name).yaml;
      const found = path === undefined ? undefined : this.yamlValue(path);
      if (found) return found;
    }
    return undefined;
  }

  fail(err: unknown, where?: string): void {
    if (err instanceof PilotError) this.errors.push(err.message);
    else this.errors.push(`${where ?? 'config'}: ${err instanceof Error ? err.message : String(err)}`);
  }

  /** Parse with `row`'s parser; on error record it and return `fallback`. */
  parse<T>(row: EnvRow<T>, found: Found, fallback: T): T {
    try {
      return row.parse(found.raw, found.where);
    } catch (err) {
      this.fail(err, found.where);
      return fallback;
    }
  }

  /** The built-in default of a row, parsed (defaults are trusted: a broken one is a bug). */
  defaultOf<T>(row: EnvRow<T>, name: string): T {
    if (row.default === undefined) throw new PilotError('E_INTERNAL', `${name} has no default`);
    return row.parse(row.default, `default of ${name}`);
  }

  /** Value of a variable with a default. */
  get<N extends keyof T & string>(name: N, ...aliases: (keyof T & string)[]): ParsedOf<T, N> {
    const row = this.row(name) as EnvRow<ParsedOf<T, N>>;
    const def = this.defaultOf(row, name);
    const found = this.find(name, ...aliases);
    return found ? this.parse(row, found, def) : def;
  }

  /** Value of a variable without a default: undefined when unset (or invalid, which is recorded). */
  opt<N extends keyof T & string>(name: N, ...aliases: (keyof T & string)[]): ParsedOf<T, N> | undefined {
    const found = this.find(name, ...aliases);
    if (!found) return undefined;
    // An alias found in the environment is parsed by its own row (OCCS_API_TOKEN for KV_TOKEN).
    const row = this.row(found.fromEnv && found.where in this.table ? found.where : name) as EnvRow<ParsedOf<T, N>>;
    try {
      return row.parse(found.raw, found.where);
    } catch (err) {
      this.fail(err, found.where);
      return undefined;
    }
  }

  /**
   * A secret: NAME or NAME_FILE (env, then yaml `x` / `x_file`). The file's content loses one
   * trailing newline (what `echo secret > file` adds). Setting both in one layer is an error.
   */
  secret(name: keyof T & string, fileName: keyof T & string, ...aliases: (keyof T & string)[]): { value: string; where: string } | undefined {
    const direct = this.envValue(name);
    const file = this.envValue(fileName);
    if (direct !== undefined && file !== undefined) {
      this.errors.push(`${name}: set either ${name} or ${fileName}, not both`);
      return undefined;
    }
    if (direct !== undefined) return { value: direct, where: name };
    if (file !== undefined) return this.readSecret(file, fileName);
    for (const alias of aliases) {
      const v = this.envValue(alias);
      if (v !== undefined) return { value: v, where: alias };
    }
    const yDirect = this.find(name);
    const yFile = this.find(fileName);
    if (yDirect && yFile) {
      this.errors.push(`${yDirect.where}: set either the value or the file, not both`);
      return undefined;
    }
    if (yDirect) return typeof yDirect.raw === 'string' ? { value: yDirect.raw, where: yDirect.where } : (this.errors.push(`${yDirect.where}: must be a single value`), undefined);
    if (yFile) return typeof yFile.raw === 'string' ? this.readSecret(yFile.raw, yFile.where) : (this.errors.push(`${yFile.where}: must be a path`), undefined);
    return undefined;
  }

  private readSecret(path: string, where: string): { value: string; where: string } | undefined {
    if (!path.startsWith('/')) {
      this.errors.push(`${where}: ${JSON.stringify(path.slice(0, 80))} is not an absolute path`);
      return undefined;
    }
    try {
      return { value: this.files.readFile(path).replace(/\r?\n$/, ''), where: `${where} (${path})` };
    } catch (err) {
      this.errors.push(`${where}: cannot read ${JSON.stringify(path)}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      return undefined;
    }
  }
}

type ParsedOf<T extends EnvTable, N extends keyof T> = T[N] extends EnvRow<infer V> ? V : never;
