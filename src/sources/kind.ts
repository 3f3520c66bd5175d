/**
 * A source kind in one module: the variables it owns (env table rows with their yaml keys and
 * parsers), how they become its settings, and its factory. The factory imports the transport
 * (and its npm dependencies) only when the kind is configured. Kinds are listed once, in
 * registry.ts.
 */
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
  create(settings: S, deps: SourceDeps): Promise<Source>;
}

/** A kind the configuration turned on, with its settings (secrets included: never logged). */
export interface ConfiguredSource {
  readonly kind: string;
  readonly settings: unknown;
}
