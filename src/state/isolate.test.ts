import { test } from 'node:test';
import assert from 'node:assert/strict';
import { culprits, entriesOf, pointedAt, without, type Entry } from './isolate.js';
import type { DesiredState } from './merge.js';
import type { DiscoveredBackend } from './model.js';

const be = (name: string, port?: number): DiscoveredBackend => ({ name, mode: 'tcp', source: 'etcd', servers: [], ...(port ? { route: { port } } : {}) });
const desired = (names: string[], files: Record<string, string> = {}): DesiredState => ({
  keys: {}, backends: names.map((n) => be(n)), files, fileSources: Object.fromEntries(Object.keys(files).map((f) => [f, 'etcd'])), excluded: [],
});
const names = (es: Entry[] | undefined) => es?.map((e) => (e.kind === 'backend' ? e.backend.name : e.path)).sort();

test('culprits: the smallest set whose removal passes, by bisection; undefined when the fault is not discovered data', async () => {
  const d = desired(Array.from({ length: 100 }, (_, i) => `b${i}`), { 'certs/x.pem': 'X' });
  const entries = entriesOf(d);
  for (const bad of [['b7'], ['b3', 'b90'], ['certs/x.pem', 'b50'], Array.from({ length: 100 }, (_, i) => `b${i}`)]) {
    let probes = 0;
    const passes = async (out: ReadonlySet<Entry>) => {
      probes++;
      const left = names([...out]) ?? [];
      return bad.every((b) => left.includes(b));
    };
    assert.deepEqual(names(await culprits(entries, passes)), [...bad].sort(), bad.join());
    if (bad.length === 1) assert.ok(probes <= 2 * Math.ceil(Math.log2(entries.length)) + 1, `${probes} probes`);
  }
  assert.equal(await culprits(entries, async () => false), undefined, 'still refused with every discovered entry out: the operator config');
});

test('pointedAt: the discovered section around the refused line, a certificate HAProxy names, a busy port', () => {
  const d: DesiredState = { ...desired(['web', 'db'], { 'certs/bad.pem': 'B' }), backends: [be('web'), be('db', 3306)] };
  const entries = entriesOf(d);
  const text = 'global\n  maxconn 1\nbackend web\n  server a 10.0.0.1:80\n  bogus\nlisten db\n  bind :3306\n';
  assert.deepEqual(names(pointedAt(entries, text, { message: "parsing [/run/rejected/haproxy.cfg:5] : unknown keyword 'bogus'", line: 5 })), ['web']);
  assert.deepEqual(names(pointedAt(entries, text, { message: 'x', output: "unable to load SSL certificate from PEM file 'certs/bad.pem'" })), ['certs/bad.pem']);
  assert.deepEqual(names(pointedAt(entries, text, { message: 'candidate config binds 0.0.0.0:3306, which is already in use' })), ['db']);
  assert.deepEqual(names(pointedAt(entries, text, { message: 'global trouble', line: 2 })), []);
});

test('without: removes backends and files, keeps the rest', () => {
  const d = desired(['a', 'b'], { 'certs/x.pem': 'X', 'certs/y.pem': 'Y' });
  const [a, , x] = entriesOf(d);
  const w = without(d, new Set([a!, x!]));
  assert.deepEqual(w.backends.map((b) => b.name), ['b']);
  assert.deepEqual(Object.keys(w.files), ['certs/y.pem']);
});
