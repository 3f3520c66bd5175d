import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, readdir, readlink, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGenerations } from './generations.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-generations-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a staged set becomes live by one symlink; the operator path shows it; undo puts the previous one back', async (t) => {
  const dir = await tempDir(t);
  const g = createGenerations(dir);
  const first = await g.install(await g.stage({ text: 'one\n', files: { 'certs/a.pem': 'A' } }));
  assert.equal(await readFile(join(dir, 'haproxy.cfg'), 'utf8'), 'one\n');
  assert.equal(await readFile(join(g.liveDir, 'certs/a.pem'), 'utf8'), 'A');
  const second = await g.install(await g.stage({ text: 'two\n', files: {} }));
  assert.equal(await g.liveText(), 'two\n');
  await second.undo();
  assert.equal(await g.liveText(), 'one\n');
  assert.equal(await readlink(g.liveDir), join('gen', first.installed.dir.split('/').pop()!));
});

test('a rejected stage is kept whole and never touches the live folder', async (t) => {
  const dir = await tempDir(t);
  const g = createGenerations(dir);
  await g.install(await g.stage({ text: 'good\n', files: { 'certs/a.pem': 'A' } }));
  const rejected = await g.reject(await g.stage({ text: 'bad\n', files: { 'certs/a.pem': 'garbage', 'certs/b.pem': 'B' } }));
  assert.equal(await readFile(join(rejected, 'haproxy.cfg'), 'utf8'), 'bad\n');
  assert.deepEqual((await readdir(join(rejected, 'certs'))).sort(), ['a.pem', 'b.pem']);
  assert.equal(await readFile(join(g.liveDir, 'certs/a.pem'), 'utf8'), 'A');
  assert.deepEqual(await readdir(join(g.liveDir, 'certs')), ['a.pem']);
});

test('rewriteLive replaces the live config in place; prune keeps the live generation and the one before', async (t) => {
  const dir = await tempDir(t);
  const g = createGenerations(dir);
  for (const text of ['1\n', '2\n', '3\n']) await g.install(await g.stage({ text, files: {} }));
  await g.rewriteLive('3 with a moved server\n');
  assert.equal(await g.liveText(), '3 with a moved server\n');
  await g.prune();
  assert.equal((await readdir(join(dir, 'gen'))).length, 2);
  // A new run continues the numbering: a folder HAProxy may read is never reused.
  const again = createGenerations(dir);
  const next = await again.install(await again.stage({ text: '4\n', files: {} }));
  assert.match(next.installed.dir, /\/gen\/4$/);
});

test('previousText is the config that was live before the last install, runtime rewrites included', async (t) => {
  const dir = await tempDir(t);
  const g = createGenerations(dir);
  assert.equal(await g.previousText(), undefined);
  await g.install(await g.stage({ text: '1\n', files: {} }));
  await g.rewriteLive('1 with a server in maint\n');
  const second = await g.install(await g.stage({ text: '2\n', files: {} }));
  assert.equal(await g.previousText(), '1 with a server in maint\n');
  await second.undo();
  assert.equal(await g.previousText(), undefined);
});
