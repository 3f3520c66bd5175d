/** The push part of the Source contract, as the sidecar source names it. */
import type { Source, Route } from '../source.js';

export type { PushRequest, PushResponse } from '../source.js';
export type SourceRoute = Route;

/** A Source that takes pushes. */
export interface PushSource extends Source {
  readonly listener: { host: string; port: number; routes: readonly Route[] };
}
