/**
 * A source kind in one module: the variables it owns (env table rows with their yaml keys and
 * parsers), how they become its settings, and its factory. The factory imports the transport
 * (and its npm dependencies) only when the kind is configured. Kinds are listed once, in
 * registry.ts.
 */
import type { LevelWithSilent } from 'pino';
import type { Logger } from '../log.js';
import type { EnvTable, Layers } from '../config/layers.js';
import type { Source } from './source.js';

export interface SourceDeps {
  log: Logger;
}

export interface SourceKind<S, T extends EnvTable = EnvTable> {
  /** Also the snapshot source name (`kv`, `etcd`, …). */
  readonly kind: string;
  readonly env: T;
  /** The kind's settings, or undefined when it is not configured; problems are recorded in L. */
  load(L: Layers<T>): S | undefined;
  /** One-line notes to log at start (keys of a foreign config file that were ignored). */
  notes?(settings: S): string[];
  /** What the kind's settings change in the core configuration (haproxy-api.toml's log level, user, group). */
  adjust?(settings: S): { logLevel?: LevelWithSilent; globalLines?: string[] };
  create(settings: S, deps: SourceDeps): Promise<Source>;
}

/** A kind the configuration turned on, with its settings (secrets included: never logged). */
export interface ConfiguredSource {
  readonly kind: string;
  readonly settings: unknown;
}
