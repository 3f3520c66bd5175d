/**
 * The push part of the Source contract (notes/contracts.md, "Source — target shape"): HTTP routes a
 * source serves on the pilot's listener. Declared here until src/sources/source.ts carries them
 * after the core refactor; the shapes are identical, so this file then becomes re-exports.
 */
import type { Source } from '../source.js';

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
  /** JSON-encoded by the listener; absent = empty body. */
  body?: unknown;
  headers?: Record<string, string>;
}

export interface SourceRoute {
  method: 'GET' | 'POST';
  /** Exact path, e.g. '/update'. */
  path: string;
  /** Default 1 MiB; larger bodies get 413 before the handler runs. */
  maxBodyBytes?: number;
  /** Must answer fast and apply asynchronously. A throw becomes a 500. */
  handle(req: PushRequest): PushResponse | Promise<PushResponse>;
}

export interface SourceListener {
  host: string;
  port: number;
  routes: readonly SourceRoute[];
}

/** A Source that takes pushes. */
export interface PushSource extends Source {
  readonly listener: SourceListener;
}
