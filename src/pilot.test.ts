import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createPilot, type PassResult, type Clock, type PilotOptions } from './pilot.js';
import type { Builder, Candidate, Settings } from './candidate.js';
import type { Source, SourceSink, Snapshot } from './sources/source.js';
import { silentLogger } from './log.js';
import { PilotError } from './errors.js';

/** A clock whose time moves only when the test says so; sleepers wake in order. */
function fakeClock() {
  let now = 0;
  let sleepers: { at: number; wake: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    sleep: (ms) => new Promise<void>((wake) => sleepers.push({ at: now + ms, wake })),
  };
  const settle = () => new Promise((r) => setImmediate(r));
  async function advance(ms: number) {
    const end = now + ms;
    for (;;) {
      await settle();
      const next = sleepers.filter((s) => s.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!next) break;
      now = next.at;
      sleepers = sleepers.filter((s) => s !== next);
      next.wake();
    }
    now = end;
    await settle();
  }
  return { clock, advance };
}

function fakeSource(name: string) {
  let sink: SourceSink | undefined;
  const source: Source = { name, start: (s) => void (sink = s), stop: async () => {} };
  const snap = (keys: Record<string, string>, at = 0): Snapshot => ({ source: name, at, keys, backends: [] });
  return { source, push: (keys: Record<string, string>, at?: number) => sink!.snapshot(snap(keys, at)), fail: (m: string) => sink!.error(new PilotError('E_SOURCE', m)) };
}

function recorder() {
  const applied: { candidate: Candidate; reason: string; force: boolean }[] = [];
  return {
    applied,
    transaction: { apply: async (candidate: Candidate, reason: string, o: { force: boolean }): Promise<PassResult> => { applied.push({ candidate, reason, force: o.force }); return { ok: true, kind: 'reload' }; } },
  };
}

/** A builder whose candidate is the merged keys, as JSON. */
function builderOf(build: Builder['build'] = async (desired) => ({ text: JSON.stringify(desired.keys), files: {}, backends: [], programs: [], warnings: [] })): Builder {
  return { settings: {} as Settings, reserved: { names: new Map(), ports: [] }, build };
}

/** The options every test shares; each overrides what it is about. */
function options(over: Partial<PilotOptions> & Pick<PilotOptions, 'transaction' | 'clock'>): PilotOptions {
  const builder = builderOf();
  return { log: silentLogger(), sources: [], builder: () => builder, commit: () => {}, quietMinMs: 0, quietMaxMs: 0, staleAfterMs: 60_000, ...over };
}

test('a burst of snapshots is coalesced into one pass after the quiet period', async () => {
  const { clock, advance } = fakeClock();
  const src = fakeSource('kv');
  const { applied, transaction } = recorder();
  const pilot = createPilot(options({ sources: [src.source], transaction, quietMinMs: 200, quietMaxMs: 2000, staleAfterMs: 60_000, clock }));
  pilot.startSources();
  for (let i = 0; i < 50; i++) {
    src.push({ '/k': String(i) });
    await advance(10);
  }
  await advance(300);
  assert.equal(applied.length, 1);
  assert.equal(applied[0]!.candidate.text, JSON.stringify({ '/k': '49' }));
});

test('a source that never goes quiet is still applied by the quiet maximum', async () => {
  const { clock, advance } = fakeClock();
  const src = fakeSource('kv');
  const { applied, transaction } = recorder();
  const pilot = createPilot(options({ sources: [src.source], transaction, quietMinMs: 200, quietMaxMs: 1000, staleAfterMs: 60_000, clock }));
  pilot.startSources();
  for (let i = 0; i < 30; i++) {
    src.push({ '/k': String(i) });
    await advance(100);
  }
  // 3 s of changes every 100 ms with a 1 s maximum: about one pass a second, never zero.
  assert.ok(applied.length >= 2 && applied.length <= 4, `passes: ${applied.length}`);
});

test('every requester gets the result of a pass that started after its request', async () => {
  const { clock, advance } = fakeClock();
  const { applied, transaction } = recorder();
  let gate: () => void = () => {};
  const slow = { apply: async (c: Candidate, r: string, o: { force: boolean }) => { await new Promise<void>((g) => (gate = g)); return transaction.apply(c, r, o); } };
  const pilot = createPilot(options({ sources: [], transaction: slow, quietMinMs: 0, quietMaxMs: 0, staleAfterMs: 1, clock }));
  const first = pilot.request('one');
  await advance(1);
  const second = pilot.request('two', { force: true });
  const third = pilot.request('three');
  gate();
  await first;
  await advance(1);
  gate();
  await Promise.all([second, third]);
  assert.deepEqual(applied.map((a) => [a.reason, a.force]), [['one', false], ['two, three', true]]);
});

test('a build failure is reported and nothing is applied', async () => {
  const { clock, advance } = fakeClock();
  const { applied, transaction } = recorder();
  const pilot = createPilot(options({ transaction, builder: () => builderOf(async () => { throw new PilotError('E_TEMPLATE', 'bad.hbs: Parse error on line 3'); }), staleAfterMs: 1, clock }));
  const result = pilot.request('x');
  await advance(1);
  assert.deepEqual(await result, { ok: false, kind: 'none', error: { code: 'E_TEMPLATE', message: 'bad.hbs: Parse error on line 3' } });
  assert.equal(applied.length, 0);
});

test('a failing source keeps its last snapshot and turns unhealthy only after the stale limit', async () => {
  const { clock, advance } = fakeClock();
  const src = fakeSource('etcd');
  const { transaction } = recorder();
  const pilot = createPilot(options({ sources: [src.source], transaction, quietMinMs: 0, quietMaxMs: 0, staleAfterMs: 5000, clock }));
  pilot.startSources();
  src.push({ '/a': '1' }, 0);
  await advance(1000);
  src.fail('etcd: connection refused');
  assert.equal(pilot.sources()[0]!.stale, true);
  assert.deepEqual(pilot.snapshots().get('etcd')!.keys, { '/a': '1' });
  assert.deepEqual(pilot.unhealthySources(), []);
  await advance(4000);
  src.fail('etcd: connection refused');
  assert.deepEqual(pilot.unhealthySources(), [], 'still within the limit');
  await advance(1001);
  assert.equal(pilot.unhealthySources().length, 1);
  assert.match(pilot.unhealthySources()[0]!, /etcd.*connection refused/);
  src.push({ '/a': '2' }, 6000);
  assert.deepEqual(pilot.unhealthySources(), []);
});

test('an idle source that starts failing is unhealthy only after the stale limit counted from its first error', async () => {
  const { clock, advance } = fakeClock();
  const src = fakeSource('kv');
  const { transaction } = recorder();
  const pilot = createPilot(options({ sources: [src.source], transaction, quietMinMs: 0, quietMaxMs: 0, staleAfterMs: 5000, clock }));
  pilot.startSources();
  src.push({ '/a': '1' }, 0);
  await advance(60_000); // unchanged data: no new snapshot for a minute
  src.fail('kv: connection refused');
  assert.deepEqual(pilot.unhealthySources(), []);
  await advance(5001);
  src.fail('kv: connection refused');
  assert.equal(pilot.unhealthySources().length, 1);
});

test('a runtime-only change is applied at once; a reload waits for quiet', async () => {
  const { clock, advance } = fakeClock();
  const src = fakeSource('kv');
  const { applied, transaction } = recorder();
  const plan = (c: Candidate) => (c.text.includes('reload') ? 'reload' : 'runtime') as 'runtime' | 'reload';
  const pilot = createPilot(options({ sources: [src.source], transaction: { ...transaction, plan }, quietMinMs: 200, quietMaxMs: 2000, clock }));
  pilot.startSources();
  src.push({ '/k': 'runtime change' });
  await advance(1);
  assert.equal(applied.length, 1, 'applied without waiting for quiet');
  src.push({ '/k': 'needs a reload' });
  await advance(100);
  assert.equal(applied.length, 1, 'a reload waits');
  await advance(150);
  assert.equal(applied.length, 2);
});

test('settings from a re-read take effect only when their candidate applied', async () => {
  const { clock, advance } = fakeClock();
  const old = builderOf();
  const next = builderOf(async () => ({ text: 'new settings', files: {}, backends: [], programs: [], warnings: [] }));
  const committed: Builder[] = [];
  let ok = false;
  const transaction = { apply: async (): Promise<PassResult> => (ok ? { ok: true, kind: 'reload' } : { ok: false, kind: 'reload', error: { code: 'E_CHECK', message: 'rejected' } }) };
  const pilot = createPilot(options({ transaction, builder: (reread) => (reread ? next : old), commit: (b) => committed.push(b), clock }));
  const refused = pilot.request('SIGHUP', { force: true, reread: true });
  await advance(1);
  assert.equal((await refused).ok, false);
  assert.deepEqual(committed, [], 'a refused candidate commits nothing');
  ok = true;
  const accepted = pilot.request('SIGHUP', { force: true, reread: true });
  await advance(1);
  assert.equal((await accepted).ok, true);
  assert.deepEqual(committed, [next]);
});

test('stop() does not wait out the quiet period of a pending pass (PILOT_QUIET_MIN=24d)', { timeout: 5000 }, async () => {
  const { clock, advance } = fakeClock();
  const { applied, transaction } = recorder();
  const day = 86_400_000;
  const pilot = createPilot(options({ transaction, quietMinMs: 24 * day, quietMaxMs: 24 * day, staleAfterMs: 1, clock }));
  const pending = pilot.request('change');
  await advance(1000);
  // The fake clock never reaches 24 days: stop must not wait for it.
  await pilot.stop();
  assert.deepEqual(await pending, { ok: false, kind: 'none', error: { code: 'E_INTERNAL', message: 'stopping' } });
  assert.equal(applied.length, 0);
});
