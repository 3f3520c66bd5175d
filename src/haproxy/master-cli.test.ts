import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  hasCliReloadStatus,
  masterCommand,
  parseHaproxyVersion,
  parseReloadAnswer,
  parseShowProc,
  runtimeCommand,
  type MasterCommandFn,
} from './master-cli.js';
import { isPilotError } from '../errors.js';

// Captured from HAProxy 2.6.12 (Debian) with one slow request in flight across two reloads.
const SHOW_PROC_26_OLD_WORKERS = [
  '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
  '20863           master          2 [failed: 0]   0d00h00m03s     2.6.12-1+deb12u4',
  '# workers',
  '20903           worker          0               0d00h00m01s     2.6.12-1+deb12u4',
  '# old workers',
  '20872           worker          2               0d00h00m03s     2.6.12-1+deb12u4',
  '# programs',
  '20902           sleeper         0               0d00h00m01s     -              ',
  '',
  '',
].join('\n');

// Captured from HAProxy 2.6.12 after a failed reload (config error): counters moved, worker kept.
const SHOW_PROC_26_FAILED = [
  '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
  '4922            master          3 [failed: 1]   0d00h10m13s     2.6.12-1+deb12u4',
  '# workers',
  '12827           worker          1               0d00h00m04s     2.6.12-1+deb12u4',
  '# programs',
  '12826           sleeper         1               0d00h00m04s     -              ',
  '',
  '',
].join('\n');

// Captured from HAProxy 3.0.11 (Debian trixie), no programs section content.
const SHOW_PROC_30 = [
  '#<PID>          <type>          <reloads>       <uptime>        <version>      ',
  '16080           master          1 [failed: 0]   0d00h00m02s     3.0.11-1+deb13u3',
  '# workers',
  '16238           worker          0               0d00h00m00s     3.0.11-1+deb13u3',
  '# programs',
  '',
  '',
].join('\n');

// The 2.0–2.4 layout (from HAProxy's source): an extra relative-PID column, `[was: N]` for old
// workers and no failed counter.
const SHOW_PROC_24 = [
  '#<PID>          <type>          <relative PID>  <reloads>       <uptime>        <version>      ',
  '100             master          0               3               0d00h01m00s     2.4.22',
  '# workers',
  '200             worker          1               0               0d00h00m05s     2.4.22',
  '# old workers',
  '150             worker          [was: 1]        1               0d00h00m40s     2.4.22',
  '# programs',
  '',
].join('\n');

test('parseShowProc: 2.6 with old workers and a program', () => {
  assert.deepEqual(parseShowProc(SHOW_PROC_26_OLD_WORKERS), {
    master: { pid: 20863, reloads: 2, failedReloads: 0, uptime: '0d00h00m03s', version: '2.6.12-1+deb12u4' },
    workers: [{ pid: 20903, type: 'worker', reloads: 0, uptime: '0d00h00m01s', version: '2.6.12-1+deb12u4' }],
    oldWorkers: [{ pid: 20872, type: 'worker', reloads: 2, uptime: '0d00h00m03s', version: '2.6.12-1+deb12u4' }],
    programs: [{ pid: 20902, type: 'sleeper', reloads: 0, uptime: '0d00h00m01s' }],
    oldPrograms: [],
  });
});

test('parseShowProc: 2.6 after a failed reload reports the failed counter', () => {
  const p = parseShowProc(SHOW_PROC_26_FAILED);
  assert.equal(p.master.reloads, 3);
  assert.equal(p.master.failedReloads, 1);
  assert.deepEqual(
    p.workers.map((w) => [w.pid, w.reloads]),
    [[12827, 1]],
  );
});

test('parseShowProc: 3.0', () => {
  const p = parseShowProc(SHOW_PROC_30);
  assert.deepEqual(p.master, {
    pid: 16080,
    reloads: 1,
    failedReloads: 0,
    uptime: '0d00h00m02s',
    version: '3.0.11-1+deb13u3',
  });
  assert.deepEqual(
    p.workers.map((w) => w.pid),
    [16238],
  );
  assert.deepEqual(p.programs, []);
});

test('parseShowProc: 2.4 layout with relative PID column', () => {
  const p = parseShowProc(SHOW_PROC_24);
  assert.equal(p.master.pid, 100);
  assert.equal(p.master.reloads, 3);
  assert.equal(p.master.failedReloads, undefined);
  assert.deepEqual(
    p.workers.map((w) => [w.pid, w.reloads]),
    [[200, 0]],
  );
  assert.deepEqual(
    p.oldWorkers.map((w) => [w.pid, w.reloads]),
    [[150, 1]],
  );
});

test('parseShowProc: an answer without a master line is an E_MASTER_CLI error', () => {
  assert.throws(() => parseShowProc('Unknown command.\n'), (e) => isPilotError(e, 'E_MASTER_CLI'));
});

test('parseReloadAnswer: 2.7+ success, failure, and 2.6 empty close', () => {
  // Captured from 3.0.11.
  const ok = parseReloadAnswer(
    'Success=1\n--\n[NOTICE]   (16080) : New worker (16238) forked\n[NOTICE]   (16080) : Loading success.\n\n',
  );
  assert.equal(ok.success, true);
  assert.match(ok.startupLog, /Loading success/);
  const bad = parseReloadAnswer(
    "Success=0\n--\n[ALERT]    (16080) : config : parsing [/tmp/t.cfg:13] : unknown keyword 'bogus_kw' in 'program' section\n[WARNING]  (16080) : Loading failure!\n\n",
  );
  assert.equal(bad.success, false);
  assert.match(bad.startupLog, /unknown keyword 'bogus_kw'/);
  assert.deepEqual(parseReloadAnswer(''), { success: undefined, startupLog: '' });
});

test('parseHaproxyVersion / hasCliReloadStatus', () => {
  assert.deepEqual(parseHaproxyVersion('2.6.12-1+deb12u4'), { major: 2, minor: 6, patch: 12 });
  assert.deepEqual(parseHaproxyVersion('3.1-dev4-abc'), { major: 3, minor: 1 });
  assert.equal(parseHaproxyVersion('-'), undefined);
  assert.equal(hasCliReloadStatus(parseHaproxyVersion('2.6.12')), false);
  assert.equal(hasCliReloadStatus(parseHaproxyVersion('2.7.0')), true);
  assert.equal(hasCliReloadStatus(parseHaproxyVersion('3.0.11-1+deb13u3')), true);
  assert.equal(hasCliReloadStatus(undefined), false);
});

test('masterCommand: missing socket is E_MASTER_CLI naming the socket', async () => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pilot-mcli-'));
  try {
    const sock = path.join(dir, 'none.sock');
    await assert.rejects(masterCommand(sock, 'show proc'), (e) => {
      assert.ok(isPilotError(e, 'E_MASTER_CLI'));
      assert.match(e.message, /none\.sock/);
      assert.equal((e.cause as NodeJS.ErrnoException).code, 'ENOENT');
      return true;
    });
  } finally {
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('masterCommand: rejects line breaks (a second command could be smuggled in)', async () => {
  await assert.rejects(masterCommand('/nonexistent', 'show proc\n@1 shutdown'), (e) => isPilotError(e, 'E_MASTER_CLI'));
});

test('masterCommand: a peer that never closes hits the timeout; half-close is sent', async () => {
  // Not an HAProxy stand-in: a local socket that records what it got and never answers, to test
  // our own timeout path. The real master is exercised in e2e/supervise-haproxy.test.ts.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'pilot-mcli-'));
  const sock = path.join(dir, 'silent.sock');
  let received = '';
  let sawEnd = false;
  const server = net.createServer({ allowHalfOpen: true }, (c) => {
    c.on('data', (d) => (received += d));
    c.on('end', () => (sawEnd = true));
  });
  await new Promise<void>((r) => server.listen(sock, r));
  try {
    await assert.rejects(masterCommand(sock, 'show proc', { timeoutMs: 200 }), (e) => {
      assert.ok(isPilotError(e, 'E_MASTER_CLI'));
      assert.match(e.message, /within 200 ms/);
      return true;
    });
    assert.equal(received, 'show proc\n');
    assert.equal(sawEnd, true);
  } finally {
    server.close();
    await fs.rm(dir, { recursive: true, force: true });
  }
});

test('runtimeCommand: prefixes @1 through the injected transport; no worker is E_MASTER_CLI', async () => {
  const sent: [string, string, number | undefined][] = [];
  let answer = 'web/a 1 127.0.0.1\n';
  const command: MasterCommandFn = async (socket, cmd, options) => {
    sent.push([socket, cmd, options?.timeoutMs]);
    return answer;
  };
  assert.equal(await runtimeCommand('/run/m.sock', 'show servers state web', { timeoutMs: 1234, command }), answer);
  assert.deepEqual(sent, [['/run/m.sock', '@1 show servers state web', 1234]]);
  // What the master answers instead of forwarding when no worker runs (mid-restart).
  answer = "Can't find the target PID matching the prefix '@1'\n";
  await assert.rejects(runtimeCommand('/run/m.sock', 'show info', { command }), (err) => {
    assert.ok(isPilotError(err, 'E_MASTER_CLI'));
    assert.match(err.message, /"@1 show info": Can't find the target PID/);
    return true;
  });
});
