/**
 * The HAProxy master supervisor against the real `haproxy` binary (2.6 here, SIGUSR2 + show proc
 * reload path; 2.7+ takes the master CLI `reload` path).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { isPilotError } from '../src/errors.js';
import { masterCommand, showProc, type MasterCommandFn } from '../src/haproxy/master-cli.js';
import type { ReloadResult } from '../src/haproxy/master.js';
import { prepareMaster } from './support/supervise-haproxy.js';
import { freePort, httpGet, pidAlive, proxyConfig, startBackend, waitFor } from './support/supervise-helpers.js';

test('start, serve, runtime command through @1, fast stop', async (t) => {
  const backend = await startBackend({ body: 'hello\n' });
  t.after(() => backend.close());
  const port = await freePort();
  const { master, masterSocket } = await prepareMaster(t, proxyConfig(port, backend.port));
  await master.start();

  const st = master.status();
  assert.ok(st.masterPid);
  assert.equal(st.workers.length, 1);
  assert.match(st.version ?? '', /^\d+\.\d+/);
  assert.deepEqual((await httpGet(port)).body, 'hello\n');

  const servers = await master.runtime('show servers state');
  assert.match(servers, /^1 app 1 s1 127\.0\.0\.1 /m);
  const proc = await showProc(masterSocket);
  assert.equal(proc.master.pid, st.masterPid);

  const exit = await master.stop('fast');
  // Measured on 2.6.12 and 3.0.11: SIGTERM to the master → workers end with 143, master exits 0.
  assert.deepEqual(exit, { code: 0, signal: null });
  assert.equal(pidAlive(st.masterPid!), false);
  assert.deepEqual(await master.exited, exit);
});

test("runtime batches go to the worker's stats socket, to the new worker after a reload, and through the master where the config has none", async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const port = await freePort();
  // The transport, recording which socket each batch (a `prompt` script) went to.
  const batches: string[] = [];
  const command: MasterCommandFn = (socket, script, options) => {
    if (script.startsWith('prompt\n')) batches.push(path.basename(socket));
    return masterCommand(socket, script, options);
  };
  const withSocket = (dir: string) => proxyConfig(port, backend.port).replace('global\n', `global\n    stats socket ${dir}/worker.sock mode 600 level admin\n`);
  const { master, configPath } = await prepareMaster(t, withSocket, (dir) => ({ workerSocket: path.join(dir, 'worker.sock'), command }));
  await master.start();
  const weight = async (): Promise<string | undefined> => /^\d+ app 1 s1 \S+ \d+ \d+ (\d+)/m.exec(await master.runtime('show servers state app'))?.[1];

  const answers = await master.runtimeBatch(['set server app/s1 weight 7', 'set server app/nope weight 1', 'show servers state app']);
  assert.deepEqual(answers.slice(0, 2), ['', 'No such server.']);
  assert.match(answers[2]!, /^\d+ app 1 s1 127\.0\.0\.1 \d+ \d+ 7 /m);
  assert.equal(await weight(), '7');
  assert.deepEqual(batches, ['worker.sock']);

  // After a reload the new worker answers on the socket (the batch checks its pid first).
  assert.equal((await master.reload('test')).ok, true);
  batches.length = 0;
  assert.deepEqual(await master.runtimeBatch(['set server app/s1 weight 9']), ['']);
  assert.equal(await weight(), '9');
  assert.deepEqual(batches, ['worker.sock']);

  // A config without the socket: the batch is tried there, then sent through the master.
  await fs.writeFile(configPath, proxyConfig(port, backend.port));
  assert.equal((await master.reload('no socket')).ok, true);
  batches.length = 0;
  assert.deepEqual(await master.runtimeBatch(['set server app/s1 weight 3']), ['']);
  assert.equal(await weight(), '3');
  assert.deepEqual(batches.slice(-1), ['master.sock']);
  await master.stop('fast');
});

test('reload is confirmed: a new worker serves, the old one leaves', async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const port = await freePort();
  const { master } = await prepareMaster(t, proxyConfig(port, backend.port));
  await master.start();
  const before = master.status();
  const oldWorker = before.workers[0]!;

  const result = await master.reload('test');
  assert.equal(result.ok, true, result.error);
  assert.equal(result.workers.length, 1);
  assert.notEqual(result.workers[0], oldWorker);
  assert.equal(result.reloads, before.reloads + 1);
  assert.deepEqual(master.status().workers, result.workers);
  await waitFor('old worker to exit', () => !pidAlive(oldWorker));
  assert.equal((await httpGet(port)).status, 200);
  await master.stop('fast');
});

test('a rejected config fails the reload and the old worker keeps serving', async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const port = await freePort();
  const { master, configPath } = await prepareMaster(t, proxyConfig(port, backend.port));
  await master.start();
  const worker = master.status().workers[0]!;

  await fs.appendFile(configPath, 'listen broken\n    no_such_keyword here\n');
  const result = await master.reload('broken config');
  assert.equal(result.ok, false);
  assert.ok(result.error);
  assert.deepEqual(result.workers, [worker]);
  assert.equal(pidAlive(worker), true);
  assert.equal((await httpGet(port)).status, 200);
  await master.stop('fast');
});

test('a burst of 20 reloads coalesces into a few, with no failed request', async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const port = await freePort();
  const { master } = await prepareMaster(t, proxyConfig(port, backend.port));
  await master.start();
  const reloadsBefore = master.status().reloads;

  let polling = true;
  let ok = 0;
  const failures: string[] = [];
  const poller = (async () => {
    while (polling) {
      try {
        const a = await httpGet(port);
        if (a.status === 200) ok++;
        else failures.push(`status ${a.status}`);
      } catch (err) {
        failures.push(String(err));
      }
    }
  })();

  // All 20 calls are made while the first reload runs (it cannot finish synchronously).
  const calls: Promise<ReloadResult>[] = [];
  for (let i = 0; i < 20; i++) calls.push(master.reload(`burst ${i}`));
  const results = await Promise.all(calls);
  polling = false;
  await poller;

  for (const r of results) assert.equal(r.ok, true, r.error);
  const performed = master.status().reloads - reloadsBefore;
  // The first call starts a reload; all others were made while it ran: exactly one more.
  assert.equal(performed, 2);
  // Callers after the first share the follow-up reload's result.
  assert.deepEqual(results[19], results[1]);
  assert.notDeepEqual(results[0]!.workers, results[1]!.workers);
  assert.deepEqual(failures, []);
  assert.ok(ok > 0);
  await master.stop('fast');
});

test('graceful stop lets an in-flight slow request finish and the master exits 0', async (t) => {
  let received = 0;
  const backend = await startBackend({ delayMs: 1500, body: 'slow\n', onRequest: () => received++ });
  t.after(() => backend.close());
  const port = await freePort();
  const { master } = await prepareMaster(t, proxyConfig(port, backend.port), { stopDelayMs: 100 });
  await master.start();

  const inFlight = httpGet(port);
  await waitFor('request to reach the backend', () => received === 1);
  const exit = await master.stop('graceful');
  const answer = await inFlight;
  assert.deepEqual(answer, { status: 200, body: 'slow\n' });
  assert.deepEqual(exit, { code: 0, signal: null });
});

test('a graceful stop that outlives the stop timeout is SIGKILLed', async (t) => {
  let received = 0;
  const backend = await startBackend({ delayMs: 8000, onRequest: () => received++ });
  t.after(() => backend.close());
  const port = await freePort();
  const { master } = await prepareMaster(t, proxyConfig(port, backend.port), { stopTimeoutMs: 500 });
  await master.start();
  const inFlight = httpGet(port).catch((err: unknown) => err);
  await waitFor('request to reach the backend', () => received === 1);
  const exit = await master.stop('graceful');
  assert.deepEqual(exit, { code: null, signal: 'SIGKILL' });
  assert.ok((await inFlight) instanceof Error);
});

test('a SIGKILLed worker takes the master down; exited reports its code', async (t) => {
  const backend = await startBackend();
  t.after(() => backend.close());
  const port = await freePort();
  const { master } = await prepareMaster(t, proxyConfig(port, backend.port));
  await master.start();
  const worker = master.status().workers[0]!;
  process.kill(worker, 'SIGKILL');
  const exit = await master.exited;
  // Measured on 2.6.12 and 3.0.11: "exit-on-failure" — the master SIGTERMs the rest and exits
  // with the worker's status, 128+9.
  assert.deepEqual(exit, { code: 137, signal: null });
});

test('an invalid config rejects start() with E_HAPROXY and HAProxy exit code', async (t) => {
  const { master } = await prepareMaster(t, 'global\nthis_is_not_a_keyword\n');
  await assert.rejects(master.start(), (e) => {
    assert.ok(isPilotError(e, 'E_HAPROXY'));
    assert.equal(e.details?.code, 1);
    return true;
  });
  assert.deepEqual(await master.exited, { code: 1, signal: null });
});
