/**
 * The one-shot commands of the real binary: render, check, healthcheck, version, and a bad
 * command line. They run as plain processes with exactly the environment given.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { launchPilot, runPilotCommand, tempDir, jsonLines, MAIN } from './support/render-harness.js';
import { freePort } from './support/ports.js';


test('render prints the config and has no side effects', async (t) => {
  const dir = await tempDir(t, 'pilot-cli-render-');
  const runDir = join(dir, 'run');
  await mkdir(runDir);
  const discovery = join(dir, 'discovery.yaml');
  await writeFile(discovery, 'services:\n  web:\n    servers: ["127.0.0.1:9001", "127.0.0.1:9002"]\n');
  const env = {
    PILOT_RUN_DIR: runDir,
    DISCOVERY_FILE: discovery,
    SERVICE_API_BIND: '127.0.0.1:8081',
    SERVICE_API_SERVERS: '127.0.0.1:9100',
    PROGRAM_API: 'python3 -m http.server 9100',
  };
  const r = await runPilotCommand(['render'], env);
  assert.equal(r.code, 0, r.stdout + r.stderr);
  // stdout is the config and nothing else, so `haproxy-pilot render > haproxy.cfg` works.
  const strays = r.stdout.split('\n').filter((l) => l.startsWith('{'));
  assert.deepEqual(strays, [], 'log lines on the stdout of render');
  assert.match(r.stdout, /^global$/m);
  assert.match(r.stdout, /^listen api\n\s+bind 127\.0\.0\.1:8081$/m);
  assert.match(r.stdout, /^\s+server \S+ 127\.0\.0\.1:9001\b/m);
  assert.match(r.stdout, /^\s+server \S+ 127\.0\.0\.1:9002\b/m);
  // No password file, no config, no socket, no certs: the run dir stays empty.
  assert.deepEqual(await readdir(runDir), []);
  // A run dir that does not exist is not created either.
  const missing = join(dir, 'not-there');
  const again = await runPilotCommand(['render'], { ...env, PILOT_RUN_DIR: missing });
  assert.equal(again.code, 0, again.stdout + again.stderr);
  await assert.rejects(readdir(missing), { code: 'ENOENT' });
  // And the program it names was not started (it would hold :9100).
  const probe = createServer();
  await new Promise<void>((resolve, reject) => {
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 9100 }, () => resolve());
  }).catch((err: NodeJS.ErrnoException) => assert.fail(`port 9100 is taken (${err.code}): did render start the program?`));
  await new Promise((r) => probe.close(r));
});

test('check: 0 for a valid config; 78 with the haproxy -c error and its line for a template that renders an invalid directive', async (t) => {
  const dir = await tempDir(t, 'pilot-cli-check-');
  const base = { PILOT_RUN_DIR: join(dir, 'run'), SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '127.0.0.1:9001' };
  const good = await runPilotCommand(['check'], base);
  assert.equal(good.code, 0, good.stdout + good.stderr);

  const templates = join(dir, 'templates');
  await mkdir(join(templates, 'partials'), { recursive: true });
  await writeFile(join(templates, 'partials', 'defaults.hbs'), 'defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n    this_is_not_a_directive on\n');
  // TMPDIR: the rendered files a refused check keeps stay in this test's folder.
  const env = { ...base, PILOT_TEMPLATES: templates, TMPDIR: dir };
  // The line haproxy -c must name: where the directive lands in the rendered file.
  const rendered = await runPilotCommand(['render'], env);
  assert.equal(rendered.code, 0, rendered.stdout + rendered.stderr);
  const line = rendered.stdout.split('\n').findIndex((l) => l.includes('this_is_not_a_directive')) + 1;
  assert.ok(line > 0);

  const bad = await runPilotCommand(['check'], env);
  assert.equal(bad.code, 78, bad.stdout + bad.stderr);
  const output = bad.stdout + bad.stderr;
  assert.match(output, new RegExp(`haproxy\\.cfg:${line}\\].*this_is_not_a_directive`));
  const errors = jsonLines(output).filter((l) => (l.level ?? 0) >= 50);
  assert.equal(errors.length, 1, output);
  assert.match(String(errors[0]!.msg), new RegExp(`:${line}\\b`));
});

test('healthcheck: 1 when nothing listens, 0 against a running pilot', async (t) => {
  const dir = await tempDir(t, 'pilot-cli-health-');
  const port = await freePort();
  const down = await runPilotCommand(['healthcheck'], { PILOT_RUN_DIR: join(dir, 'run'), PILOT_CONTROL_ADDR: `127.0.0.1:${port}` });
  assert.equal(down.code, 1, down.stdout + down.stderr);

  const pilot = await launchPilot(t, {});
  const up = await pilot.p.exec([process.execPath, MAIN, 'healthcheck']);
  assert.equal(up.exitCode, 0, up.stdout + up.stderr);
});

test('version prints haproxy-pilot and HAProxy versions', async () => {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const haproxy = await execa('haproxy', ['-v']);
  const haproxyVersion = /version (\S+)/.exec(haproxy.stdout)?.[1];
  assert.ok(haproxyVersion);
  const r = await runPilotCommand(['version'], {});
  assert.equal(r.code, 0, r.stdout + r.stderr);
  assert.match(r.stdout, new RegExp(`^haproxy-pilot ${pkg.version.replace(/\./g, '\\.')}$`, 'm'));
  assert.ok(r.stdout.includes(haproxyVersion), r.stdout);
});

test('an extra argument or an unknown command after haproxy-api flags exits 64 with the usage', async () => {
  // (A first argument that is not a command runs as a program of its own: e2e/operator.test.ts.)
  for (const args of [['render', 'extra'], ['-F', 'sidecar:7777', 'frobnicate'], ['plan', '--out', 'x']]) {
    const r = await runPilotCommand(args, {});
    assert.equal(r.code, 64, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
    assert.match(r.stderr, /usage: haproxy-pilot/);
  }
});
