import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../log.js';
import { createFileSource, parseDiscoveryFile } from './transport.js';
import type { Snapshot } from '../source.js';

function sink() {
  const snapshots: Snapshot[] = [];
  const errors: Error[] = [];
  const until = async (cond: () => boolean, what: string): Promise<void> => {
    const deadline = Date.now() + 10_000;
    while (!cond()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return { snapshots, errors, until, snapshot: (s: Snapshot) => void snapshots.push(s), error: (e: Error) => void errors.push(e) };
}

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-file-source-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Write like an editor or a config tool: a new file renamed over the old one. */
async function replace(path: string, text: string): Promise<void> {
  await writeFile(`${path}.tmp`, text);
  await rename(`${path}.tmp`, path);
}

test('reads the file, follows replacements by rename (poll far away), keeps last good on a parse error', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'discovery.yaml');
  await writeFile(path, 'services:\n  web:\n    servers: ["10.0.0.1:80"]\n');
  const s = sink();
  const source = createFileSource({ path }, { log: silentLogger(), pollMs: 600_000, debounceMs: 20 });
  source.start(s);
  t.after(() => source.stop());
  await s.until(() => s.snapshots.length === 1, 'first snapshot');
  assert.deepEqual(s.snapshots[0]!.backends, [{ name: 'web', mode: 'http', source: 'file', servers: [{ name: '10.0.0.1_80', host: '10.0.0.1', port: 80 }] }]);
  assert.deepEqual(s.snapshots[0]!.keys, { '/services/web/servers/0': '10.0.0.1:80' });

  await replace(path, 'services:\n  web:\n    servers: ["10.0.0.1:80", "10.0.0.2:80"]\n');
  await s.until(() => s.snapshots.length === 2, 'snapshot after rename');
  assert.equal(s.snapshots[1]!.backends[0]!.servers.length, 2);

  await replace(path, 'services:\n  web:\n    servers: ["10.0.0.1:80"\n  db: {\n');
  await s.until(() => s.errors.length === 1, 'parse error');
  assert.match(s.errors[0]!.message, new RegExp(`^file: ${path.replace(/[.]/g, '\\.')}:\\d+:\\d+: `));
  assert.equal(s.snapshots.length, 2, 'no snapshot from a broken file');

  await replace(path, 'services:\n  web:\n    servers: ["10.0.0.3:80"]\n');
  await s.until(() => s.snapshots.length === 3, 'snapshot after the fix');
  assert.equal(s.snapshots[2]!.backends[0]!.servers[0]!.host, '10.0.0.3');
});

test('a missing file is an error; the file appearing later is picked up', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'later.json');
  const s = sink();
  const source = createFileSource({ path }, { log: silentLogger(), pollMs: 600_000, debounceMs: 20 });
  source.start(s);
  t.after(() => source.stop());
  await s.until(() => s.errors.length === 1, 'not found error');
  assert.equal(s.errors[0]!.message, `file: ${path}: not found`);
  await replace(path, JSON.stringify({ services: { db: { mode: 'tcp', servers: ['10.0.0.5:5432'], route: { port: 5432 } } } }));
  await s.until(() => s.snapshots.length === 1, 'snapshot');
  assert.deepEqual(s.snapshots[0]!.backends[0]!.route, { port: 5432 });
});

test('the slow poll finds changes that no watch event announced', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'sub', 'd.yaml');
  const s = sink();
  // The directory does not exist yet: no fs.watch is possible, only the poll can see the file.
  const source = createFileSource({ path }, { log: silentLogger(), pollMs: 100, debounceMs: 20 });
  source.start(s);
  t.after(() => source.stop());
  await s.until(() => s.errors.length === 1, 'not found');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(join(dir, 'sub'));
  await writeFile(path, 'services: {}\n');
  await s.until(() => s.snapshots.length === 1, 'snapshot from the poll');
  assert.deepEqual(s.snapshots[0]!.backends, []);
});

test('a file renamed over the one read is read at once; in-place writes and a vanished file wait for quiet', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'discovery.yaml');
  await writeFile(path, 'services:\n  web:\n    servers: ["10.0.0.1:80"]\n');
  const s = sink();
  // A debounce far longer than the test: only the immediate path can deliver within it.
  const source = createFileSource({ path }, { log: silentLogger(), pollMs: 600_000, debounceMs: 600_000 });
  source.start(s);
  t.after(() => source.stop());
  await s.until(() => s.snapshots.length === 1, 'first snapshot');

  await replace(path, 'services:\n  web:\n    servers: ["10.0.0.2:80"]\n');
  await s.until(() => s.snapshots.length === 2, 'the renamed file, without waiting for the debounce');
  assert.equal(s.snapshots[1]!.backends[0]!.servers[0]!.host, '10.0.0.2');

  // Written in place (maybe half-way when the event comes): held by the debounce.
  await writeFile(path, 'services:\n  web:\n    servers: []\n');
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(s.snapshots.length, 2, 'an in-place write waits for quiet');

  // Removed (or unlinked before a re-create): no "not found" until things are quiet.
  const { unlink } = await import('node:fs/promises');
  await unlink(path);
  await new Promise((r) => setTimeout(r, 300));
  assert.deepEqual(s.errors, [], 'a vanished file waits for quiet');
});

test('parse errors name file, line and column for yaml and json', () => {
  assert.throws(() => parseDiscoveryFile('/d.yaml', 'services:\n  a: 1\n  a: 2\n'), /^Error: \/d\.yaml:3:3: /);
  assert.throws(() => parseDiscoveryFile('/d.json', '{\n  "services": {,}\n}'), /^Error: \/d\.json:2:\d+: /);
  const { locate } = parseDiscoveryFile('/d.yaml', 'services:\n  web:\n    servers: []\n');
  assert.equal(locate(['services', 'web']), '/d.yaml:2');
});
