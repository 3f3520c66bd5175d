/**
 * Runs one input family: FUZZ_RUNS generated values (default 10,000) with one seed (FUZZ_SEED,
 * default random, always printed), in three phases:
 *
 *  1. the property, per value: no crash, and the render holds what the oracle expects;
 *  2. `haproxy -c` on what was accepted, in few checks: one full candidate per distinct render
 *     shape, and (for discovery layouts) every accepted snapshot packed into shared candidates of
 *     many backends; a failing candidate is narrowed to the values behind it (HAProxy's line and
 *     proxy names, else bisection);
 *  3. each kind of failure is replayed (seed + path) and shrunk by fast-check with `haproxy -c`
 *     on the value's own candidate, so the report gives the smallest value HAProxy refuses.
 */
import { after, before } from 'node:test';
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import fc from 'fast-check';
import { configSections } from '../../../src/haproxy/config-words.js';
import type { Snapshot } from '../../../src/sources/source.js';
import { HaproxyChecker, mapLimit, CHECK_LANES, type CheckSet } from './haproxy-check.js';

export const FUZZ_RUNS = Number(process.env.FUZZ_RUNS ?? 10_000);
/**
 * Families of valid values (nothing may be dropped) add to the hostile ones: FUZZ_VALID_RUNS,
 * default a fifth of FUZZ_RUNS.
 */
export const FUZZ_VALID_RUNS = Number(process.env.FUZZ_VALID_RUNS ?? Math.ceil(FUZZ_RUNS / 5));

/**
 * FUZZ_SEED, else a fixed one: `npm test` (and CI) runs the same 10,000 values per family every
 * time, so it never turns red on its own; FUZZ_SEED=random explores new ones (the seed is printed
 * with every report, and a failure it finds becomes a regression case next to the code).
 */
const FIXED_SEED = 20261202;
export const FUZZ_SEED =
  process.env.FUZZ_SEED === 'random' ? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0 : process.env.FUZZ_SEED !== undefined ? Number(process.env.FUZZ_SEED) : FIXED_SEED;

/** FUZZ_SHOW=<run>: print that run's value and its render (with FUZZ_SEED and FUZZ_RUNS of a report). */
const SHOW = process.env.FUZZ_SHOW === undefined ? undefined : Number(process.env.FUZZ_SHOW);

/** A piece of a shared candidate: one value's snapshot. */
export interface Unit {
  snapshot: Snapshot;
}

export interface Outcome {
  /** The value's own candidate, when it rendered; its section shapes (oracle.ts shapeOf) pick the ones phase 2 checks. */
  render?: { shape: string[]; set: () => CheckSet };
  unit?: Unit;
  /** Entries accepted / skipped by the layout or loader, for the report. */
  accepted: number;
  skipped: number;
}

export interface Family<T> {
  name: string;
  arbitrary: fc.Arbitrary<T>;
  /** One value through the product; throws when a property does not hold. */
  run(value: T): Promise<Outcome>;
  /** A shared candidate for many snapshots (discovery layouts). */
  batch?(snapshots: Snapshot[]): Promise<CheckSet>;
  /** Backends per shared candidate (default 300). */
  batchSize?: number;
  /** Ports merge leaves out (the configuration's own): never given to another value in a shared candidate. */
  reservedPort?(port: number, address: string): boolean;
  /** Whole renders can be merged into shared candidates (mergeRenders) to check the render shapes. */
  mergeRenders?: boolean;
}

export interface Report {
  family: string;
  seed: number;
  runs: number;
  rendered: number;
  accepted: number;
  skipped: number;
  shapes: number;
  batches: number;
  checks: number;
  checkMs: number;
  ms: number;
  failures: string[];
}

interface Failure {
  index: number;
  message: string;
}

const MAX_FAILURES = 40;
/** Time allowed to shrink one failure (each step is a `haproxy -c`). */
const SHRINK_MS = 60_000;
/** Renders per merged candidate. */
const MERGE_SIZE = 40;

function chunk<T>(items: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < items.length; i += size) out.push(items.slice(i, i + size));
  return out;
}

/** The text of a render's global section (renders merge only with renders of the same one). */
function globalOf(text: string): string {
  return configSections(text)
    .filter((s) => s.keyword === 'global')
    .flatMap((s) => s.body.map((l) => l.words.join(' ')))
    .join('\n');
}

/**
 * Several renders as one config: the first one's global section, then for each render its own
 * defaults and its other sections, every proxy and resolvers name suffixed `_m<i>` (and the
 * words that refer to them: default_backend, use_backend, resolvers). HAProxy's check does not
 * bind, so the same port in several renders is fine.
 */
export function mergeRenders(texts: readonly string[]): string {
  const out: string[] = [];
  texts.forEach((text, i) => {
    const sections = configSections(text);
    const names = new Set(sections.filter((s) => s.name !== '').map((s) => s.name));
    const rename = (n: string): string => (names.has(n) ? `${n}_m${i}` : n);
    for (const s of sections) {
      if (s.keyword === 'global' && i > 0) continue;
      out.push(s.name === '' ? s.keyword : `${s.keyword} ${rename(s.name)}`);
      for (const l of s.body) {
        out.push(`    ${l.words.map((w, j) => (j > 0 && ['default_backend', 'use_backend', 'resolvers'].includes(l.words[j - 1]!) ? rename(w) : w)).join(' ')}`);
      }
      out.push('');
    }
  });
  return out.join('\n');
}

/** The test file this process runs (node --test runs each file in a process of its own). */
const TEST_FILE = process.argv[1] && /\.test\.js$/.test(process.argv[1]) ? relative(process.cwd(), process.argv[1]) : 'dist/e2e/<file>.test.js';

export function reproduce(family: string, seed: number, runs: number, path?: string): string {
  return `FUZZ_SEED=${seed} FUZZ_RUNS=${runs} node --test ${TEST_FILE}  # family ${family}${path === undefined ? '' : `, fast-check path ${path}`}`;
}

export async function fuzzFamily<T>(family: Family<T>, checker: HaproxyChecker, runs = FUZZ_RUNS, seed = FUZZ_SEED): Promise<Report> {
  const started = Date.now();
  const checks0 = checker.checks;
  const ms0 = checker.ms;
  const report: Report = { family: family.name, seed, runs, rendered: 0, accepted: 0, skipped: 0, shapes: 0, batches: 0, checks: 0, checkMs: 0, ms: 0, failures: [] };

  // Phase 1: the property over every value.
  const shapes = new Map<string, { index: number; set: () => CheckSet }>();
  const covered = new Set<string>();
  const units: { index: number; unit: Unit }[] = [];
  let index = 0;
  let recording = true;
  const property = fc.asyncProperty(family.arbitrary, async (value) => {
    const i = index++;
    const out = await family.run(value);
    if (SHOW === i) {
      process.stderr.write(`FUZZ_SHOW ${family.name} run ${i}:\n${fc.stringify(value)}\n`);
      if (out.render) process.stderr.write(`--- its render\n${out.render.set().text}\n`);
    }
    if (!recording) return;
    report.accepted += out.accepted;
    report.skipped += out.skipped;
    if (out.render) {
      report.rendered++;
      const fresh = out.render.shape.filter((x) => !covered.has(x));
      if (fresh.length > 0) {
        for (const x of fresh) covered.add(x);
        shapes.set(fresh.join('\n\n'), { index: i, set: out.render.set });
      }
    }
    if (out.unit && out.unit.snapshot.backends.length > 0) units.push({ index: i, unit: out.unit });
  });
  const details = await fc.check(property, { numRuns: runs, seed });
  recording = false;
  if (details.failed) {
    const why = details.errorInstance instanceof Error ? details.errorInstance.message : String(details.errorInstance);
    throw new Error(`${family.name}: ${fc.defaultReportMessage(details)}\n${why}\nreproduce: ${reproduce(family.name, seed, runs, details.counterexamplePath ?? undefined)}`);
  }
  report.shapes = shapes.size;
  if (process.env.FUZZ_DEBUG_SHAPES) (await import('node:fs')).writeFileSync(process.env.FUZZ_DEBUG_SHAPES, [...shapes.keys()].join('\n=====\n'));

  // Phase 2: haproxy -c on what was accepted.
  const failures: Failure[] = [];
  const fail = (index: number, message: string): void => {
    if (failures.length < MAX_FAILURES && !failures.some((f) => f.index === index)) failures.push({ index, message });
  };
  if (family.mergeRenders) {
    // The renders picked for their shapes: those of one global section are merged (each value's
    // own defaults and renamed proxies) into shared candidates; a failing one is bisected down to
    // the value.
    const byGlobal = new Map<string, { index: number; text: string; files: Readonly<Record<string, string>> }[]>();
    for (const { index, set } of shapes.values()) {
      const { text, files } = set();
      // A render with files (certificates) is checked alone: merged, two files of one name would hide one.
      const key = Object.keys(files).length > 0 ? `files ${index}` : globalOf(text);
      byGlobal.set(key, [...(byGlobal.get(key) ?? []), { index, text, files }]);
    }
    const groups = [...byGlobal.values()].flatMap((g) => chunk(g, MERGE_SIZE));
    report.batches = groups.filter((g) => g.length > 1).length;
    const narrow = async (group: { index: number; text: string; files: Readonly<Record<string, string>> }[]): Promise<void> => {
      if (group.length === 0 || failures.length >= MAX_FAILURES) return;
      const files = Object.assign({}, ...group.map((g) => g.files)) as Record<string, string>;
      const r = await checker.check({ text: group.length === 1 ? group[0]!.text : mergeRenders(group.map((g) => g.text)), files });
      if (r.ok) return;
      if (group.length === 1) return fail(group[0]!.index, r.message);
      const half = Math.ceil(group.length / 2);
      await narrow(group.slice(0, half));
      await narrow(group.slice(half));
    };
    await mapLimit(groups, CHECK_LANES, narrow);
  } else {
    await mapLimit([...shapes.values()], CHECK_LANES, async ({ index, set }) => {
      const r = await checker.check(set());
      if (!r.ok) fail(index, r.message);
    });
  }
  if (family.batch) {
    const batches = pack(units, family.batchSize ?? 300, family.reservedPort ?? (() => false));
    report.batches = batches.length;
    const narrow = async (batch: { index: number; unit: Unit }[]): Promise<void> => {
      if (batch.length === 0 || failures.length >= MAX_FAILURES) return;
      const set = await family.batch!(batch.map((b) => b.unit.snapshot));
      const r = await checker.check(set);
      if (r.ok) return;
      if (batch.length === 1) return fail(batch[0]!.index, r.message);
      const named = implicated(r.output, set.text);
      const guilty = batch.filter((b) => b.unit.snapshot.backends.some((x) => named.has(x.name)));
      if (guilty.length > 0 && guilty.length < batch.length) {
        for (const g of guilty) fail(g.index, r.message);
        return narrow(batch.filter((b) => !guilty.includes(b)));
      }
      const half = Math.ceil(batch.length / 2);
      await narrow(batch.slice(0, half));
      await narrow(batch.slice(half));
    };
    await mapLimit(batches, CHECK_LANES, narrow);
  }

  // Phase 3: shrink one value of each kind of failure.
  const kinds = new Map<string, Failure>();
  for (const f of failures) if (!kinds.has(kindOf(f.message))) kinds.set(kindOf(f.message), f);
  for (const [kind, f] of [...kinds.entries()].slice(0, 8)) {
    // Shrinks keep failing the same way (another refusal is another finding, not this one). The
    // replayed value comes first; when it passes alone (it failed only in a shared candidate),
    // fast-check would go on through the remaining runs: those are not checked.
    let first = true;
    let alone = true;
    const shrink = fc.asyncProperty(family.arbitrary, async (value) => {
      const replayed = first;
      first = false;
      if (!replayed && !alone) return true;
      const out = await family.run(value);
      if (!out.render) return true;
      const r = await checker.check(out.render.set());
      if (!r.ok && kindOf(r.message) === kind) throw new Error(r.message);
      if (replayed) alone = false;
      return true;
    });
    const d = await fc.check(shrink, { numRuns: runs, seed, path: String(f.index), interruptAfterTimeLimit: SHRINK_MS, markInterruptAsFailure: false });
    const shown = d.failed ? fc.stringify(d.counterexample?.[0]) : '(its own candidate passes: it fails only together with other values)';
    report.failures.push(
      `haproxy -c refused an accepted value (run ${f.index}): ${f.message}\n  shrunk: ${shown}\n  ${d.failed ? `haproxy: ${(d.errorInstance as Error | undefined)?.message ?? ''}\n  ` : ''}reproduce: ${reproduce(family.name, seed, runs, d.failed ? d.counterexamplePath ?? String(f.index) : String(f.index))}`,
    );
  }
  if (failures.length > kinds.size) report.failures.push(`… ${failures.length - kinds.size} more value(s) of the same kinds`);
  report.checks = checker.checks - checks0;
  report.checkMs = checker.ms - ms0;
  report.ms = Date.now() - started;
  return report;
}

/** A refusal's kind: HAProxy's message without names, numbers and locations. */
function kindOf(message: string): string {
  return message.replace(/'[^']*'/g, "'…'").replace(/\([^)]*\)/g, '(…)').replace(/\[[^\]]*\]/g, '[…]').replace(/\d+/g, 'N');
}

/**
 * Packs snapshots into shared candidates of at most `size` backends. A name, a listen port or a
 * file name a candidate already holds is changed (`<name>_<n>`, a port from 20000 up,
 * `dup<n>.pem`) so that merge keeps every entry: each distinct value is still checked as it is,
 * in the first candidate that holds it.
 */
function pack(units: { index: number; unit: Unit }[], size: number, reserved: (port: number, address: string) => boolean): { index: number; unit: Unit }[][] {
  const bins: { index: number; unit: Unit }[][] = [];
  let bin: { index: number; unit: Unit }[] = [];
  let names = new Set<string>();
  let ports = new Set<number>();
  let files = new Set<string>();
  let backends = 0;
  let n = 0;
  const freshPort = (): number => {
    let p = 20_000;
    while (ports.has(p)) p++;
    return p;
  };
  for (const u of units) {
    if (backends > 0 && backends + u.unit.snapshot.backends.length > size) {
      bins.push(bin);
      bin = [];
      names = new Set();
      ports = new Set();
      files = new Set();
      backends = 0;
    }
    const snap = u.unit.snapshot;
    const renamed = snap.backends.map((b) => {
      let name = b.name;
      while (names.has(name)) name = `${b.name.slice(0, 55)}_${n++}`;
      names.add(name);
      let route = b.route;
      // A reserved port stays: merge leaves the backend out, as in the value's own render.
      if (route?.port !== undefined && !reserved(route.port, route.bindAddress ?? '')) {
        if (ports.has(route.port)) route = { ...route, port: freshPort() };
        ports.add(route.port!);
      }
      return name === b.name && route === b.route ? b : { ...b, name, ...(route ? { route } : {}) };
    });
    let fileMap: Record<string, string> | undefined;
    if (snap.files) {
      fileMap = {};
      for (const [f, data] of Object.entries(snap.files)) {
        let key = f;
        while (files.has(key)) key = `dup${n++}.pem`;
        files.add(key);
        fileMap[key] = data;
      }
    }
    bin.push({ index: u.index, unit: { snapshot: { ...snap, backends: renamed, ...(fileMap ? { files: fileMap } : {}) } } });
    backends += renamed.length;
  }
  if (bin.length > 0) bins.push(bin);
  return bins;
}

/** Proxy names HAProxy's alerts point at: by line (`[file:12]`) and by quoted name. */
function implicated(output: string, text: string): Set<string> {
  const names = new Set<string>();
  const sections = configSections(text);
  for (const line of output.split('\n')) {
    if (!/\[ALERT\]/.test(line)) continue;
    for (const m of line.matchAll(/\[[^\]\s]*haproxy\.cfg:(\d+)\]/g)) {
      const n = Number(m[1]);
      const s = [...sections].reverse().find((x) => x.header.line <= n);
      if (s) names.add(s.name);
    }
    for (const m of line.matchAll(/'([^'\s]+)'/g)) names.add(m[1]!.split('/')[0]!);
  }
  return names;
}

/** The report as a few lines for the test's diagnostics. */
export function summary(r: Report): string {
  return `${r.family}: ${r.runs} values (seed ${r.seed}) in ${(r.ms / 1000).toFixed(1)} s; ${r.rendered} rendered, ${r.accepted} entries accepted, ${r.skipped} skipped; haproxy -c: ${r.shapes} shapes + ${r.batches} shared candidates = ${r.checks} checks (${(r.checkMs / 1000).toFixed(1)} s of checking)`;
}

/**
 * For a test file: one `haproxy -c` checker, started before its tests and closed after them, and
 * a runner that reports a family's summary and fails the test on any failure it found.
 */
export function fuzzSuite(): <T>(t: { diagnostic(m: string): void }, family: Family<T>, runs?: number) => Promise<void> {
  let checker: HaproxyChecker;
  before(async () => {
    checker = await HaproxyChecker.create();
  });
  after(() => checker.close());
  return async (t, family, runs = FUZZ_RUNS) => {
    const r = await fuzzFamily(family, checker, runs);
    t.diagnostic(summary(r));
    assert.deepEqual(r.failures, [], `\n${r.failures.join('\n\n')}`);
  };
}
