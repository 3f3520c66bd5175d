/**
 * Last good across a restart: which earlier generation may be served again at start, and what
 * the pilot says and holds back while it is served. `haproxy -c` is a scripted checker here (the
 * whole path with real HAProxy and etcd is e2e/fleet-etcd.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../log.js';
import { PilotError } from '../errors.js';
import type { Candidate } from '../candidate.js';
import type { ConfiguredSource } from '../sources/kind.js';
import type { SourceStatus } from '../state/model.js';
import type { CheckDeps } from '../apply/transaction.js';
import { createGenerations } from '../apply/generations.js';
import { createLastGood, FINGERPRINT_FILE, readPreviousGeneration, settingsFingerprint } from './last-good.js';

const log = silentLogger();
const EMPTY = 'frontend web\n    bind :5000\n    default_backend none\n';
const WITH_SERVERS = `${EMPTY}backend web\n    server a 10.0.0.1:80\n`;
const etcd: ConfiguredSource[] = [{ kind: 'etcd', settings: { endpoints: ['http://10.0.0.5:2379'], prefix: '/haproxy-a', password: 'hunter2' } }];
const candidate = (text: string, files: Record<string, string> = {}): Candidate => ({ text, files, backends: [], programs: [], warnings: [] });
const empty = async (): Promise<Candidate> => candidate(EMPTY);
const failing: SourceStatus[] = [{ name: 'etcd', ok: false, stale: true, lastErrorAt: 1, lastError: 'unreachable' }];
const answered: SourceStatus[] = [{ name: 'etcd', ok: true, stale: false, lastSuccessAt: 1 }];

async function withRunDir(fn: (runDir: string, deps: CheckDeps & { checked: string[] }) => Promise<void>): Promise<void> {
  const runDir = await mkdtemp(join(tmpdir(), 'pilot-last-good-'));
  const checked: string[] = [];
  const deps = {
    bin: 'haproxy',
    generations: createGenerations(runDir),
    relativePaths: true,
    log,
    checked,
    check: async ({ path }: { path: string }) => {
      const text = await readFile(path, 'utf8');
      checked.push(text);
      if (text.includes('refused')) throw new PilotError('E_CHECK', `${path}: refused`);
      return { output: '', warnings: [] };
    },
  };
  try {
    await fn(runDir, deps);
  } finally {
    await rm(runDir, { recursive: true, force: true });
  }
}

/** A previous run: it started (writing the fingerprint) and then applied `text`. */
async function previousRun(runDir: string, deps: CheckDeps, text: string, files: Record<string, string> = {}): Promise<void> {
  // It started with the store answering: the fingerprint is of the settings, not of its data.
  await createLastGood({ runDir, configured: etcd, log }).installFirst(deps, candidate(`${EMPTY}backend web\n    server z 10.0.0.9:80\n`), answered, empty);
  const stage = await deps.generations.stage({ text, files });
  await deps.generations.install(stage);
}

test('no source answered and the previous run applied a config with the same settings: it serves again, files included', async () => {
  await withRunDir(async (runDir, deps) => {
    await previousRun(runDir, deps, WITH_SERVERS, { 'certs/site.pem': 'PEM' });
    const lg = createLastGood({ runDir, configured: etcd, log });
    const first = await lg.installFirst(deps, candidate(EMPTY), failing, empty);
    assert.equal(first.text, WITH_SERVERS);
    assert.deepEqual(first.files, { 'certs/site.pem': 'PEM' });
    assert.deepEqual(first.backends, [], 'backends unknown: the first snapshot plans a reload');
    assert.equal(await deps.generations.liveText(), WITH_SERVERS);
    assert.equal(await readFile(join(runDir, 'live', 'certs', 'site.pem'), 'utf8'), 'PEM');
    assert.equal(deps.checked.at(-1), WITH_SERVERS, 'checked again by haproxy -c before it serves');
    const notice = lg.notice(0);
    assert.match(notice ?? '', /^serving the last applied config from .*\/gen\/\d+\/haproxy\.cfg \(applied \d{4}-.*\): source etcd has not answered since start$/);
    const held = lg.hold(0);
    assert.equal(held?.ok, false);
    assert.match(held?.error.message ?? '', /serving the last applied config/);
    // The first snapshot ends it, for good.
    assert.equal(lg.hold(1), undefined);
    assert.equal(lg.notice(0), undefined);
    assert.equal(lg.active(0), false);
  });
});

test('a source answered, or there is no earlier generation, or other settings: the built config serves', async () => {
  await withRunDir(async (runDir, deps) => {
    const fresh = createLastGood({ runDir, configured: etcd, log });
    assert.equal((await fresh.installFirst(deps, candidate(EMPTY), failing, empty)).text, EMPTY, 'a first start has nothing earlier');
    assert.equal(fresh.notice(0), undefined);
    assert.equal(fresh.hold(0), undefined);

    const stage = await deps.generations.stage({ text: WITH_SERVERS, files: {} });
    await deps.generations.install(stage);
    const fromStore = `${EMPTY}backend web\n    server b 10.0.0.2:80\n`;
    assert.equal((await createLastGood({ runDir, configured: etcd, log }).installFirst(deps, candidate(fromStore), answered, empty)).text, fromStore, 'a source answered: its data wins');

    await deps.generations.install(await deps.generations.stage({ text: WITH_SERVERS, files: {} }));
    const otherId: ConfiguredSource[] = [{ kind: 'etcd', settings: { endpoints: ['http://10.0.0.5:2379'], prefix: '/haproxy-b' } }];
    assert.equal((await createLastGood({ runDir, configured: otherId, log }).installFirst(deps, candidate(EMPTY), failing, empty)).text, EMPTY, 'another HAPROXY_ID');

    await deps.generations.install(await deps.generations.stage({ text: WITH_SERVERS, files: {} }));
    const otherRender = `${EMPTY}    # another template\n`;
    assert.equal((await createLastGood({ runDir, configured: otherId, log }).installFirst(deps, candidate(otherRender), failing, async () => candidate(otherRender))).text, otherRender, 'other templates or settings');
  });
});

test('an earlier generation haproxy -c now refuses (another HAProxy version): the built config serves', async () => {
  await withRunDir(async (runDir, deps) => {
    await previousRun(runDir, deps, `${WITH_SERVERS}    refused\n`);
    const lg = createLastGood({ runDir, configured: etcd, log });
    assert.equal((await lg.installFirst(deps, candidate(EMPTY), failing, empty)).text, EMPTY);
    assert.equal(lg.hold(0), undefined);
  });
});

test('HAPROXY_CONFIG, or no source configured: never', async () => {
  await withRunDir(async (runDir, deps) => {
    await previousRun(runDir, deps, WITH_SERVERS);
    const user = createLastGood({ runDir, configured: etcd, userConfig: '/etc/haproxy.cfg', log });
    assert.equal((await user.installFirst(deps, candidate(EMPTY), failing, empty)).text, EMPTY);
    await writeFile(join(runDir, 'unused'), '');
    const none = createLastGood({ runDir, configured: [], log });
    assert.equal((await none.installFirst(deps, candidate(EMPTY), [], empty)).text, EMPTY);
  });
});

test('the fingerprint holds no secret and changes with the settings', async () => {
  const a = settingsFingerprint(candidate(EMPTY), etcd);
  const samePasswordChanged = settingsFingerprint(candidate(EMPTY), [{ kind: 'etcd', settings: { ...(etcd[0]!.settings as object), password: 'other' } }]);
  assert.equal(a, samePasswordChanged, 'secrets are not part of it');
  assert.notEqual(a, settingsFingerprint(candidate(`${EMPTY}#\n`), etcd));
  assert.notEqual(a, settingsFingerprint(candidate(EMPTY, { 'certs/x.pem': 'x' }), etcd));
  await withRunDir(async (runDir, deps) => {
    await createLastGood({ runDir, configured: etcd, log }).installFirst(deps, candidate(EMPTY), answered, empty);
    assert.equal((await readFile(join(runDir, FINGERPRINT_FILE), 'utf8')).trim(), a);
    assert.equal((await readPreviousGeneration(runDir))?.text, EMPTY);
  });
});
