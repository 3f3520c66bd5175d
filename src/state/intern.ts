/**
 * Structural sharing across snapshots: a backend equal to the one the same source gave last time
 * is replaced by that earlier object. Identity then means "unchanged" all the way down (views and
 * rendered sections are cached per backend object), so a change of one server among 100,000
 * re-renders one section. Sources that already keep identity pay one pointer comparison each.
 */
import type { DiscoveredBackend, DiscoveredServer } from './model.js';

const sameServer = (a: DiscoveredServer, b: DiscoveredServer): boolean =>
  a === b || (a.name === b.name && a.host === b.host && a.port === b.port && a.weight === b.weight && a.state === b.state);

function sameList<T>(a: readonly T[] | undefined, b: readonly T[] | undefined, same: (x: T, y: T) => boolean): boolean {
  if (a === b) return true;
  if (!a || !b || a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (!same(a[i]!, b[i]!)) return false;
  return true;
}

export function sameBackend(a: DiscoveredBackend, b: DiscoveredBackend): boolean {
  if (a === b) return true;
  const ra = a.route ?? {};
  const rb = b.route ?? {};
  return (
    a.name === b.name &&
    a.mode === b.mode &&
    a.source === b.source &&
    ra.domain === rb.domain &&
    ra.pathPrefix === rb.pathPrefix &&
    ra.port === rb.port &&
    ra.bindAddress === rb.bindAddress &&
    sameList(a.servers, b.servers, sameServer) &&
    sameList(a.dns, b.dns, (x, y) => x.name === y.name && x.port === y.port && x.slots === y.slots) &&
    sameList(a.options, b.options, (x, y) => x === y) &&
    sameList(a.serverOptions, b.serverOptions, (x, y) => x === y)
  );
}

/** `next`'s backends, each replaced by its equal in `previous` (same name) when there is one. */
export function internBackends(next: readonly DiscoveredBackend[], previous: readonly DiscoveredBackend[] | undefined): readonly DiscoveredBackend[] {
  if (!previous || previous.length === 0) return next;
  const byName = new Map(previous.map((b) => [b.name, b]));
  let changed = next.length !== previous.length;
  const out = next.map((b, i) => {
    const old = byName.get(b.name);
    const kept = old !== undefined && sameBackend(old, b) ? old : b;
    if (kept !== previous[i]) changed = true;
    return kept;
  });
  // Nothing changed at all: the earlier array itself, so a whole snapshot compares by identity.
  return changed ? out : previous;
}
