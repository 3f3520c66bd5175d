/**
 * What a key layout (seed 001 confd, seed 002 Container Cloud, the discovery file) makes of a
 * source's raw keys: validated backends, optional files, and what it had to leave out. Layouts
 * are pure: they never log; the source logs `skipped` so an operator sees which key was wrong.
 */
import type { DiscoveredBackend } from './model.js';

export interface Skipped {
  /** The store key (or file path) that was left out. */
  key: string;
  /** Why, including the rejected value shortened by showValue (never a secret). */
  reason: string;
}

export interface LayoutResult {
  backends: DiscoveredBackend[];
  files?: Record<string, string>;
  skipped: Skipped[];
}

/** A layout turns absolute '/'-prefixed keys into backends. */
export type Layout = (keys: Readonly<Record<string, string>>) => LayoutResult;

/** '/a/b/' and 'a/b' both become '/a/b' (keys in snapshots are absolute, without a trailing '/'). */
export function absolutePrefix(prefix: string): string {
  const trimmed = prefix.replace(/^\/+|\/+$/g, '');
  return trimmed === '' ? '' : `/${trimmed}`;
}
