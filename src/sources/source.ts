/**
 * A discovery source watches one store and emits whole snapshots. It never applies anything
 * itself: the reconcile loop (src/pilot.ts) merges the latest snapshot of every source into
 * the desired state. A source that fails calls onError and keeps quiet: the loop keeps that
 * source's last good snapshot and marks it stale.
 */
import type { DiscoveredBackend } from '../state/model.js';

export interface Snapshot {
  /** The source's name: `kv`, `etcd`, `file`, `sidecar`, … */
  source: string;
  /** When the store answered (ms since epoch). */
  at: number;
  /** Raw keys and values as read (absolute keys, '/'-separated, leading '/'), for confd-style helpers. */
  keys: Readonly<Record<string, string>>;
  /** Normalised, validated backends derived from the keys. Invalid entries are already dropped (and logged). */
  backends: readonly DiscoveredBackend[];
  /** Extra files the source wants on disk (certificates), keyed by a safe base name. */
  files?: Readonly<Record<string, string>>;
}

export interface SourceSink {
  snapshot(snapshot: Snapshot): void;
  error(error: Error): void;
}

export interface Source {
  readonly name: string;
  start(sink: SourceSink): void;
  stop(): Promise<void>;
}
