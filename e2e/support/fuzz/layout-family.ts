/**
 * A discovery layout as a fuzz family: the generated value goes through the layout, its result
 * becomes the source's snapshot, and the snapshot goes through merge → build → oracle with a
 * fixed configuration. Properties per value:
 *
 *  - the layout does not throw (except a documented whole-document error), and every skipped
 *    entry names its key on one line;
 *  - the build does not throw: what a layout accepted, the view renders (otherwise one entry
 *    would block every other);
 *  - the render holds exactly what the accepted entries should produce (oracle.ts);
 *  - for families of valid values: nothing is skipped or excluded.
 */
import assert from 'node:assert/strict';
import type fc from 'fast-check';
import type { LayoutResult } from '../../../src/state/layout.js';
import type { Snapshot } from '../../../src/sources/source.js';
import type { Builder } from '../../../src/candidate.js';
import { shownKey } from '../../../src/state/validate.js';
import { portOwner } from '../../../src/state/reserved.js';
import { builderFor, load, render, stringsIn } from './pipeline.js';
import { shapeOf } from './oracle.js';
import type { Family, Outcome } from './run.js';

export interface LayoutFamilyOptions<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** Source name stamped on snapshots. */
  source: string;
  /** The layout over the value. */
  layout(value: T): LayoutResult;
  /** A throw the layout documents (a whole-document error): true to accept it. */
  wholeError?(err: unknown, value: T): boolean;
  /** The snapshot's raw keys. */
  keys?(value: T): Record<string, string>;
  /** Settings of the pipeline (environment on top of the fuzz defaults). */
  env?: Record<string, string>;
  /** Every entry of every value must be accepted (families of valid values). */
  allAccepted?: boolean;
  batchSize?: number;
}

const reasons = new Map<string, number>();
/** FUZZ_DEBUG_SKIPS=1: the most common reasons for skipping, on exit (to tune generators). */
function tally(reason: string): void {
  if (reasons.size === 0) {
    process.on('exit', () => {
      for (const [r, n] of [...reasons].sort((a, b) => b[1] - a[1]).slice(0, 25)) process.stderr.write(`${n}\t${r}\n`);
    });
  }
  const kind = reason.replace(/services\.(?:"(?:[^"\\]|\\.)*"|[^\s:]*?)(?=[.:\s]|\.(?:mode|servers|dns|route)\b)/g, 'services.X').replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 140);
  reasons.set(kind, (reasons.get(kind) ?? 0) + 1);
}

export const FUZZ_ENV = { PILOT_DEMO: 'off', STATS_PASSWORD: 'stats-Pw_1', PILOT_RUN_DIR: '/run/haproxy-pilot-fuzz' };

export function layoutFamily<T>(o: LayoutFamilyOptions<T>): Family<T> {
  const builder: Builder = builderFor(load({ ...FUZZ_ENV, ...o.env }));
  return {
    name: o.name,
    arbitrary: o.arbitrary,
    batchSize: o.batchSize,
    mergeRenders: true,
    reservedPort: (port, address) => portOwner(builder.reserved, { address, port }) !== undefined,
    async run(value): Promise<Outcome> {
      let result: LayoutResult;
      try {
        result = o.layout(value);
      } catch (err) {
        if (o.wholeError?.(err, value)) return { accepted: 0, skipped: 1 };
        throw err;
      }
      if (process.env.FUZZ_DEBUG_SKIPS) for (const s of result.skipped) tally(s.reason);
      for (const s of result.skipped) {
        assert.equal(typeof s.key, 'string');
        assert.ok(!/[\r\n]/.test(s.reason), `a skipped reason spans lines: ${JSON.stringify(s.reason)}`);
        assert.ok(s.reason.includes(s.key) || s.reason.includes(shownKey(s.key)), `the reason for skipping ${JSON.stringify(s.key)} does not name it: ${JSON.stringify(s.reason)}`);
      }
      const snapshot: Snapshot = { source: o.source, at: 0, keys: o.keys?.(value) ?? {}, backends: result.backends, ...(result.files && Object.keys(result.files).length > 0 ? { files: result.files } : {}) };
      const r = await render(builder, [snapshot], stringsIn(value));
      assert.ok(r.problems.length === 0, `the render is not what the accepted entries should produce:\n${r.problems.join('\n')}\n--- render\n${r.candidate.text}`);
      if (o.allAccepted) {
        assert.deepEqual(result.skipped, [], 'a valid entry was skipped');
        assert.deepEqual(r.desired.excluded, [], 'a valid entry was excluded');
      }
      const servers = result.backends.reduce((n, b) => n + b.servers.length + (b.dns?.length ?? 0), 0);
      return {
        accepted: result.backends.length + servers,
        skipped: result.skipped.length,
        render: { shape: shapeOf(r.candidate.text, false), set: () => ({ text: r.candidate.text, files: r.candidate.files }) },
        unit: { snapshot },
      };
    },
    async batch(snapshots) {
      const r = await render(builder, snapshots);
      assert.ok(r.problems.length === 0, `a shared candidate is not what its entries should produce:\n${r.problems.join('\n')}`);
      assert.equal(r.desired.excluded.filter((e) => /by backend |another source/.test(e.reason)).length, 0, `entries were excluded from a shared candidate: ${JSON.stringify(r.desired.excluded.slice(0, 3))}`);
      return { text: r.candidate.text, files: r.candidate.files };
    },
  };
}
