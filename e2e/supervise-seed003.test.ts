/**
 * Seed 003: the blog's config runs under haproxy-pilot's supervision — its `program` section is
 * lifted out of the config and python3's http.server is supervised by us, not by HAProxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { silentLogger } from '../src/log.js';
import { liftProgramSections } from '../src/supervise/program-sections.js';
import { createProgramSupervisor } from '../src/supervise/programs.js';
import { prepareMaster } from './support/supervise-haproxy.js';
import { seed003WithPorts } from './support/supervise-seed003.js';
import { freePort, httpGet, pidAlive, waitFor } from './support/supervise-helpers.js';

test('seed 003 config: program lifted and supervised, traffic reaches python3 http.server', async (t) => {
  const frontPort = await freePort();
  const appPort = await freePort();
  const lifted = liftProgramSections(seed003WithPorts(frontPort, appPort), 'seed003.cfg');
  assert.deepEqual(
    lifted.programs.map((p) => [p.name, p.command]),
    [['myserver', ['/usr/bin/python3', '-m', 'http.server', '--bind', '127.0.0.1', String(appPort)]]],
  );

  const programLines: string[] = [];
  const programs = createProgramSupervisor({
    log: silentLogger(),
    specs: lifted.programs,
    output: { stdout: { write: (s: string) => programLines.push(s) }, stderr: { write: (s: string) => programLines.push(s) } },
  });
  t.after(() => programs.stopAll(3000));
  const { master } = await prepareMaster(t, lifted.config);

  programs.start();
  await master.start();
  // HAProxy itself runs no program: they were lifted out.
  const proc = await master.masterCommand('show proc');
  assert.doesNotMatch(proc, /myserver/);

  const first = await waitFor('a 200 through HAProxy from http.server', async () => {
    const a = await httpGet(frontPort, '/');
    return a.status === 200 ? a : undefined;
  });
  assert.match(first.body, /Directory listing for \//);
  await waitFor('http.server access log, prefixed', () => programLines.some((l) => l.startsWith('[myserver] ') && l.includes('"GET / HTTP/1.1" 200')));

  // A reload restarts the start-on-reload program (HAProxy's default) and traffic flows again.
  const pythonPid = programs.status()[0]!.pid!;
  const result = await master.reload('seed 003 reload');
  assert.equal(result.ok, true, result.error);
  programs.onHaproxyReload();
  await waitFor('python restarted', () => {
    const s = programs.status()[0]!;
    return s.state === 'running' && s.pid !== pythonPid;
  });
  await waitFor('traffic after the reload', async () => (await httpGet(frontPort, '/')).status === 200);

  const newPid = programs.status()[0]!.pid!;
  assert.deepEqual(await master.stop('graceful'), { code: 0, signal: null });
  await programs.stopAll(3000);
  assert.equal(pidAlive(newPid), false);
  assert.equal(programs.status()[0]!.state, 'stopped');
});
