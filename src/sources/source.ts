/**
 * A discovery source watches one store, or takes pushes, and emits whole snapshots. It never
 * applies anything itself: the reconcile loop (src/pilot.ts) merges the latest snapshot of every
 * source into the desired state. A source that fails calls error() and keeps quiet: the loop
 * keeps that source's last good snapshot and marks it stale.
 *
 * When a backend did not change since the source's previous snapshot, the source emits the same
 * object again: identity means "unchanged", and later stages skip work for it.
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
  /** HTTP routes the source serves (pushes, webhooks); the pilot opens the listener before start(). */
  readonly listener?: { host: string; port: number; routes: readonly Route[] };
  /** Extra fields for /health (Sidecar's `last_changed`), if the source has any. */
  health?(): Record<string, unknown>;
}

/** An HTTP route on one of the pilot's listeners (control server, a source's push endpoint). */
export interface Route {
  method: 'GET' | 'POST';
  /** Exact path, e.g. `/update`. */
  path: string;
  /** Who may call it: `loopback` answers 403 to anyone else (the default is `any`). */
  access?: 'any' | 'loopback';
  /** Bodies larger than this get 413 before the handler runs (default 1 MiB). */
  maxBodyBytes?: number;
  /** Must answer fast: work that takes time happens after the answer. A throw is a 500. */
  handle(req: PushRequest): PushResponse | Promise<PushResponse>;
}

export interface PushRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: Readonly<Record<string, string | string[] | undefined>>;
  body: Buffer;
  remoteAddress: string;
}

export interface PushResponse {
  status: number;
  /** JSON-encoded; a string is sent as text/plain. */
  body?: unknown;
  headers?: Record<string, string>;
}
