import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { writeAtomic } from './write.js';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-write-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('writeAtomic creates and replaces a file and leaves no temporary file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'haproxy.cfg');
  await writeAtomic(path, 'one\n');
  assert.equal(await readFile(path, 'utf8'), 'one\n');
  assert.equal((await stat(path)).mode & 0o777, 0o644);
  await writeAtomic(path, 'two\n');
  assert.equal(await readFile(path, 'utf8'), 'two\n');
  assert.deepEqual(await readdir(dir), ['haproxy.cfg']);
});

test('writeAtomic honours the mode of a new file', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'secret');
  await writeAtomic(path, 'x', { mode: 0o600 });
  assert.equal((await stat(path)).mode & 0o777, 0o600);
});

test('writeAtomic replaces by rename (a new inode), never rewrites in place', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'haproxy.cfg');
  await writeFile(path, 'old\n');
  const before = (await stat(path)).ino;
  await writeAtomic(path, 'new\n');
  assert.notEqual((await stat(path)).ino, before, 'a new inode, never an in-place rewrite');
});

test('writeAtomic fails cleanly when the target cannot be replaced', async (t) => {
  const dir = await tempDir(t);
  // A directory in place of the file: rename(2) fails with EISDIR; the temp file must not be left behind.
  const path = join(dir, 'haproxy.cfg');
  await writeFile(join(dir, 'keep'), 'k');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(path);
  await writeFile(join(path, 'inside'), 'x');
  await assert.rejects(writeAtomic(path, 'data'));
  assert.deepEqual((await readdir(dir)).sort(), ['haproxy.cfg', 'keep']);
});

