/**
 * What an operator expects on day one and every day after (issue 12), against the real binary
 * and real HAProxy: mistakes are refused or warned about by name, output works in scripts and on
 * terminals, `plan` shows a change before it is made, and the official image's conventions hold.
 * Every pilot runs in its own network namespace (pilot-process.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { startPilot, eventually } from './support/pilot-process.js';
import { launchPilot, runPilotCommand, tempDir, jsonLines, writeFileAtomic, backendCommand, CONTROL_PORT, MAIN } from './support/render-harness.js';

const errorsOf = (lines: { level?: number; msg?: string }[]) => lines.filter((l) => (l.level ?? 0) >= 50);

test('two things on one port are refused at start, naming both (exit 78); check says the same', async (t) => {
  const dir = await tempDir(t, 'pilot-op-clash-');
  const env = { PILOT_RUN_DIR: join(dir, 'run'), SERVICE_WEB_BIND: ':1936', SERVICE_WEB_SERVERS: '127.0.0.1:9001' };
  const p = startPilot(env);
  t.after(() => p.kill());
  const { code } = await p.exited;
  assert.equal(code, 78, p.lines.join('\n'));
  const errors = errorsOf(p.logs);
  assert.equal(errors.length, 1, p.lines.join('\n'));
  assert.match(String(errors[0]!.msg), /port 1936 is used twice: by the stats page \(STATS_PORT\) and by service web \(SERVICE_WEB_BIND\)/);
  assert.ok(!p.logs.some((l) => l.msg === 'starting haproxy master'), 'HAProxy was never started');
  const check = await runPilotCommand(['check'], env);
  assert.equal(check.code, 78, check.stdout + check.stderr);
  assert.match(check.stderr, /by the stats page \(STATS_PORT\) and by service web \(SERVICE_WEB_BIND\)/);
});

test('a clash brought in by SIGHUP is refused naming the yaml key; the running config keeps serving', async (t) => {
  const dir = await tempDir(t, 'pilot-op-hup-');
  const yaml = join(dir, 'pilot.yaml');
  await writeFile(yaml, 'services:\n  web:\n    bind: ":8081"\n    servers: ["127.0.0.1:9001"]\n');
  const pilot = await launchPilot(t, { PILOT_CONFIG: yaml, PROGRAM_WEB: backendCommand('web', 9001), STATS_PASSWORD: 'stats-Pw1' });
  await eventually('the service answers', async () => ((await pilot.p.http('/', 8081)).status === 200 ? true : undefined), 15_000);
  const before = await pilot.status();
  await writeFileAtomic(yaml, 'services:\n  web:\n    bind: ":1936"\n    servers: ["127.0.0.1:9001"]\n');
  await pilot.p.signal('SIGHUP');
  const refused = await pilot.p.waitForLog((l) => /not applied: port 1936 is used twice/.test(String(l.msg)), 15_000);
  assert.match(String(refused.msg), new RegExp(`by the stats page \\(STATS_PORT\\) and by service web \\(${yaml.replace(/[.]/g, '\\.')}:3 services\\.web\\.bind\\)`));
  assert.equal((await pilot.p.http('/', 8081)).status, 200, 'the service still answers on its old port');
  assert.equal((await pilot.p.http('/haproxy?stats', 1936, ['-u', 'admin:stats-Pw1'])).status, 200, 'the stats page still answers');
  const after = await pilot.status();
  assert.equal(after.haproxy.reloads, before.haproxy.reloads, 'HAProxy was not reloaded');
  assert.equal((await pilot.health()).status, 503, '/health says the last change was not applied');
});

test('a program that cannot start shows on /health after PILOT_PROGRAM_FAILURES tries; /ready is not /health; healthcheck prints why; metrics', async (t) => {
  const pilot = await launchPilot(t, { PROGRAM_BAD: '/nonexistent/bad', PILOT_PROGRAM_FAILURES: '2', PILOT_LOGLEVEL: 'debug' });
  const health = await eventually(
    '/health names the program',
    async () => {
      const h = await pilot.health();
      return h.status === 503 && h.body.reasons?.some((r) => /^program bad \(env PROGRAM_BAD\) failed to start \d+ times in a row: spawn \/nonexistent\/bad ENOENT$/.test(r)) ? h : undefined;
    },
    15_000,
  );
  assert.ok(health);
  assert.equal((await pilot.p.http('/ready', CONTROL_PORT)).status, 200, 'ready: the first config is applied and there is no source to wait for');
  const hc = await pilot.p.exec([process.execPath, MAIN, 'healthcheck']);
  assert.equal(hc.exitCode, 1);
  assert.match(hc.stdout, /^unhealthy: program bad \(env PROGRAM_BAD\) failed to start \d+ times in a row/m);
  // A misspelt variable of ours is warned about with the closest known name.
  assert.ok(pilot.p.logs.some((l) => l.level === 40 && /PILOT_LOGLEVEL .*did you mean PILOT_LOG_LEVEL\?/.test(String(l.msg))), 'the misspelling is warned about');
  const metrics = (await pilot.p.http('/metrics', CONTROL_PORT)).body;
  assert.match(metrics, /^haproxy_pilot_program_restarts_total\{program="bad"\} [1-9]\d*$/m);
  assert.match(metrics, /^haproxy_pilot_haproxy_workers\{state="current"\} 1$/m);
  assert.match(metrics, /^haproxy_pilot_last_apply_success_timestamp_seconds \d/m);
  assert.match(metrics, /^haproxy_pilot_process_resident_memory_bytes \d/m);
  assert.doesNotMatch(metrics, /config_info|hash=/);
});

test('/ready waits for every source to answer once', async (t) => {
  const dir = await tempDir(t, 'pilot-op-ready-');
  const discovery = join(dir, 'discovery.yaml');
  const pilot = await launchPilot(t, { DISCOVERY_FILE: discovery });
  const notYet = await pilot.p.http('/ready', CONTROL_PORT);
  assert.equal(notYet.status, 503);
  assert.match(notYet.body, /source file has not answered yet/);
  await writeFileAtomic(discovery, 'services:\n  web:\n    servers: ["127.0.0.1:9001"]\n');
  await eventually('ready once the file is there', async () => ((await pilot.p.http('/ready', CONTROL_PORT)).status === 200 ? true : undefined), 15_000);
});

test('the start line says where everything is', async (t) => {
  const pilot = await launchPilot(t, {});
  const line = String(pilot.p.logs.find((l) => String(l.msg).startsWith('started:'))!.msg);
  assert.match(line, /HAProxy listens on :1936 \(stats\), :8080 \(demo\)/);
  assert.ok(line.includes(`stats page http://<host>:1936/haproxy?stats (user admin, password generated, in ${pilot.runDir}/stats-password)`), line);
  assert.ok(line.includes('Prometheus http://<host>:1936/metrics (no credentials)'), line);
  assert.ok(line.includes('control http://127.0.0.1:7778 (/health /ready /status /metrics)'), line);
  assert.ok(line.includes(`running config ${pilot.runDir}/haproxy.cfg`), line);
});

test('HAProxy lines are not printed twice on reload', async (t) => {
  const pilot = await launchPilot(t, {});
  await pilot.p.signal('SIGHUP');
  await pilot.p.waitForLine((l) => /Former worker \(\d+\) exited/.test(l), 30_000);
  await new Promise((r) => setTimeout(r, 300));
  for (const proxy of ['demo', 'stats']) {
    const seen = pilot.p.lines.filter((l) => l.includes(`Proxy ${proxy} stopped`));
    assert.equal(seen.length, 1, `one line for proxy ${proxy}:\n${seen.join('\n')}`);
  }
  // The master's own lines, which no log carries, still come through.
  assert.ok(pilot.p.lines.some((l) => /^\[NOTICE\]\s+\(\d+\) : Loading success\./.test(l)));
});

test('the Prometheus exporter answers without credentials, or behind the stats credentials with STATS_PROMETHEUS_AUTH=basic', async (t) => {
  const [open, closed] = await Promise.all([
    launchPilot(t, { STATS_PASSWORD: 'stats-Pw1' }),
    launchPilot(t, { STATS_PASSWORD: 'stats-Pw1', STATS_PROMETHEUS_AUTH: 'basic' }),
  ]);
  const o = await open.p.http('/metrics', 1936);
  assert.equal(o.status, 200);
  assert.match(o.body, /^haproxy_process_/m);
  assert.equal((await closed.p.http('/metrics', 1936)).status, 401);
  assert.equal((await closed.p.http('/metrics', 1936, ['-u', 'admin:wrong'])).status, 401);
  const c = await closed.p.http('/metrics', 1936, ['-u', 'admin:stats-Pw1']);
  assert.equal(c.status, 200);
  assert.match(c.body, /^haproxy_process_/m);
  assert.equal((await closed.p.http('/haproxy?stats', 1936)).status, 401, 'the stats page still asks');
});

test('render: the config on stdout and nothing else, logs on stderr in PILOT_LOG_FORMAT, the same every time; --out writes atomically', async (t) => {
  const dir = await tempDir(t, 'pilot-op-render-');
  const runDir = join(dir, 'run');
  const env = { PILOT_RUN_DIR: runDir, PILOT_LOG_FORMAT: 'pretty', PILOT_LOGLEVEL: 'debug' };
  const a = await runPilotCommand(['render'], env);
  const b = await runPilotCommand(['render'], env);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, b.stdout, 'no freshly generated password: the output is deterministic');
  assert.match(a.stdout, /^\s+stats auth admin:<generated-at-start>$/m);
  assert.doesNotMatch(a.stdout, /PILOT_LOGLEVEL/);
  assert.match(a.stderr, /PILOT_LOGLEVEL is not a haproxy-pilot variable .*did you mean PILOT_LOG_LEVEL\?/);
  assert.ok(!a.stderr.split('\n').some((l) => l.startsWith('{')), `pretty logs on stderr, not JSON:\n${a.stderr}`);
  const check = await runPilotCommand(['check'], env);
  assert.equal(check.code, 0, check.stderr);
  assert.equal(check.stdout, 'configuration is valid');
  // The password of an earlier start is used when its file is there.
  await mkdir(runDir);
  const pw = 'Abcdefghij_klmnopqrstuvwxyz012345';
  await writeFile(join(runDir, 'stats-password'), `${pw}\n`, { mode: 0o600 });
  const withFile = await runPilotCommand(['render'], env);
  assert.match(withFile.stdout, new RegExp(`^\\s+stats auth admin:${pw}$`, 'm'));
  const out = join(dir, 'haproxy.cfg');
  await writeFile(out, 'old\n');
  const written = await runPilotCommand(['render', '--out', out], env);
  assert.equal(written.code, 0, written.stderr);
  assert.equal(written.stdout, '');
  assert.equal(await readFile(out, 'utf8'), `${withFile.stdout}\n`, '(execa strips the final newline of stdout)');
  assert.deepEqual((await readdir(dir)).sort(), ['haproxy.cfg', 'run'], 'no temporary file left');
});

test('check: a refused line is traced to the template file and line that wrote it; the rendered file is kept', async (t) => {
  const dir = await tempDir(t, 'pilot-op-check-');
  const templates = join(dir, 'templates');
  await mkdir(join(templates, 'partials'), { recursive: true });
  await writeFile(join(templates, 'partials', 'defaults.hbs'), 'defaults\n    mode http\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n    this_is_not_a_directive on\n');
  const r = await runPilotCommand(['check'], { PILOT_RUN_DIR: join(dir, 'run'), PILOT_TEMPLATES: templates, SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '127.0.0.1:9001', TMPDIR: dir });
  assert.equal(r.code, 78, r.stdout + r.stderr);
  assert.equal(r.stdout, '');
  const errors = errorsOf(jsonLines(r.stderr));
  assert.equal(errors.length, 1, r.stderr);
  const msg = String(errors[0]!.msg);
  assert.match(msg, new RegExp(`^haproxy -c rejected line \\d+, written by ${join(templates, 'partials', 'defaults.hbs').replace(/[.]/g, '\\.')}:6: .*this_is_not_a_directive`));
  const kept = /the rendered config is kept in (\S+)\)$/.exec(msg)?.[1];
  assert.ok(kept && existsSync(kept), `the staged file is kept: ${msg}`);
  assert.ok(kept.startsWith(`${dir}/haproxy-pilot-check-`), kept);
  assert.match(await readFile(kept, 'utf8'), /this_is_not_a_directive/);
});

test('errors: one readable line per problem on a terminal, JSON lines otherwise; a missing HAProxy is one line', async (t) => {
  const bad = { STATS_PORT: '70000', PILOT_STOP_TIMEOUT: 'abc' };
  const json = await runPilotCommand(['render'], bad);
  assert.equal(json.code, 78);
  assert.equal(json.stdout, '', 'nothing on stdout');
  const lines = json.stderr.trim().split('\n');
  assert.equal(lines.length, 2, json.stderr);
  const parsed = lines.map((l) => JSON.parse(l) as { level: number; code: string; msg: string });
  assert.deepEqual(parsed.map((l) => [l.level, l.code]), [[50, 'E_CONFIG'], [50, 'E_CONFIG']]);
  assert.deepEqual(parsed.map((l) => l.msg.split(':')[0]).sort(), ['PILOT_STOP_TIMEOUT', 'STATS_PORT']);

  const tty = await execa('script', ['-qec', `${process.execPath} ${MAIN} render`, '/dev/null'], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', ...bad },
    extendEnv: false,
    reject: false,
  });
  assert.equal(tty.exitCode, 78);
  const out = tty.stdout.replace(/\r/g, '').trim().split('\n');
  assert.equal(out.length, 2, tty.stdout);
  assert.match(out[0]!, /^haproxy-pilot: error: (STATS_PORT|PILOT_STOP_TIMEOUT): /);
  assert.match(out[1]!, /^haproxy-pilot: error: (STATS_PORT|PILOT_STOP_TIMEOUT): /);

  const dir = await tempDir(t, 'pilot-op-nobin-');
  const missing = await runPilotCommand(['run'], { PILOT_RUN_DIR: join(dir, 'run'), PILOT_CONTROL_ADDR: 'off', HAPROXY_BIN: 'no-such-haproxy', PATH: '/usr/bin:/bin' });
  assert.equal(missing.code, 69, missing.stdout + missing.stderr);
  const errors = errorsOf([...jsonLines(missing.stdout), ...jsonLines(missing.stderr)]);
  assert.equal(errors.length, 1, missing.stdout + missing.stderr);
  assert.equal(errors[0]!.msg, 'HAProxy not found: no "no-such-haproxy" on PATH (/usr/bin:/bin) nor in /usr/local/sbin, /usr/sbin, /sbin: install HAProxy (apt-get install haproxy) or set HAPROXY_BIN to its path');
  assert.doesNotMatch(missing.stdout + missing.stderr, /^\s+at |"stack"/m, 'no stack trace');
});

test('plan: the diff of haproxy.cfg and the runtime commands, or why it needs a reload; nothing applied', async (t) => {
  const dir = await tempDir(t, 'pilot-op-plan-');
  const discovery = join(dir, 'discovery.yaml');
  const file = (servers: string, extra = '') => `services:\n  web:\n    servers: [${servers}]\n${extra}`;
  await writeFile(discovery, file('{address: "127.0.0.1:9001", name: a}'));
  const pilot = await launchPilot(t, { DISCOVERY_FILE: discovery });
  const plan = async (...args: string[]) => pilot.p.exec([process.execPath, MAIN, 'plan', ...args]);
  const before = await pilot.status();
  const running = await readFile(join(pilot.runDir, 'haproxy.cfg'), 'utf8');

  const same = await plan();
  assert.equal(same.exitCode, 0, same.stdout + same.stderr);
  assert.match(same.stdout, /^haproxy\.cfg: no change/m);
  assert.match(same.stdout, /^plan: nothing to apply$/m);

  const moved = join(dir, 'moved.yaml');
  await writeFile(moved, file('{address: "127.0.0.1:9002", name: a}'));
  const runtime = await plan('--snapshot', moved);
  assert.equal(runtime.exitCode, 0, runtime.stdout + runtime.stderr);
  assert.match(runtime.stdout, new RegExp(`^--- ${pilot.runDir.replace(/[.]/g, '\\.')}/haproxy\\.cfg\\trunning$`, 'm'));
  assert.match(runtime.stdout, /^-\s+server a 127\.0\.0\.1:9001\b/m);
  assert.match(runtime.stdout, /^\+\s+server a 127\.0\.0\.1:9002\b/m);
  assert.match(runtime.stdout, /^plan: 1 runtime API command, no reload\n  set server web\/a addr 127\.0\.0\.1 port 9002$/m);

  const added = join(dir, 'added.yaml');
  await writeFile(added, file('{address: "127.0.0.1:9001", name: a}', '  api:\n    servers: ["127.0.0.1:9003"]\n'));
  const reload = await plan('--snapshot', added);
  assert.match(reload.stdout, /^\+backend api$/m);
  assert.match(reload.stdout, /^plan: reload \(backend api added\)$/m);

  // No secret in the output, and nothing was applied.
  const password = (await readFile(join(pilot.runDir, 'stats-password'), 'utf8')).trim();
  for (const r of [same, runtime, reload]) assert.ok(!r.stdout.includes(password), 'the stats password is not shown');
  const after = await pilot.status();
  assert.equal(after.haproxy.reloads, before.haproxy.reloads);
  assert.equal(after.apply.runtimeOps, before.apply.runtimeOps);
  assert.equal(await readFile(join(pilot.runDir, 'haproxy.cfg'), 'utf8'), running);
});

test('a first argument that is not a haproxy-pilot command runs as it is; one starting with - goes to HAProxy', async (t) => {
  const vv = await runPilotCommand(['haproxy', '-vv'], { PATH: '/usr/bin:/bin' });
  assert.equal(vv.code, 0, vv.stderr);
  assert.match(vv.stdout, /^HAProxy version /m);
  const sh = await runPilotCommand(['sh', '-c', 'echo from-sh; exit 7'], {});
  assert.equal(sh.code, 7);
  assert.equal(sh.stdout, 'from-sh');
  const missing = await runPilotCommand(['frobnicate'], {});
  assert.equal(missing.code, 127);
  assert.match(missing.stderr, /frobnicate: not found \(not a haproxy-pilot command either/);
  const dir = await tempDir(t, 'pilot-op-exec-');
  const cfg = join(dir, 'haproxy.cfg');
  await writeFile(cfg, 'defaults\n    mode http\n    timeout client 1s\n    timeout server 1s\n    timeout connect 1s\nfrontend f\n    bind :8080\n');
  const c = await runPilotCommand(['-f', cfg, '-c'], {});
  assert.equal(c.code, 0, c.stdout + c.stderr);
  assert.match(c.stdout, /Configuration file is valid/);
  // As PID 1, a stop signal reaches the command, and its exit code is haproxy-pilot's.
  const p = startPilot({}, { args: ['sh', '-c', 'trap "echo got-term; exit 5" TERM; echo ready; while :; do sleep 0.1; done'] });
  t.after(() => p.kill());
  await p.waitForLine((l) => l === 'ready');
  await p.signal('SIGTERM');
  assert.equal((await p.exited).code, 5);
  assert.ok(p.lines.includes('got-term'));
});

test("the official image's /usr/local/etc/haproxy/haproxy.cfg runs when nothing else is configured", async (t) => {
  const dir = await tempDir(t, 'pilot-op-official-');
  await mkdir(join(dir, 'etc', 'haproxy'), { recursive: true });
  await writeFile(
    join(dir, 'etc', 'haproxy', 'haproxy.cfg'),
    'global\n    log stdout format raw local0\ndefaults\n    mode http\n    timeout client 5s\n    timeout server 5s\n    timeout connect 5s\nfrontend official\n    bind :8080\n    http-request return status 200 content-type text/plain string official\n',
  );
  const p = startPilot({ PILOT_RUN_DIR: join(dir, 'run') }, { setup: `mount --bind ${join(dir, 'etc')} /usr/local/etc` });
  t.after(() => p.kill());
  await p.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
  assert.ok(p.logs.some((l) => /running \/usr\/local\/etc\/haproxy\/haproxy\.cfg as it is/.test(String(l.msg))));
  const r = await p.http('/', 8080);
  assert.equal(r.body, 'official');
});

test('without root: the run directory falls back to a per-user one and says so; HAProxy is found outside PATH', async (t) => {
  const fallback = '/tmp/haproxy-pilot-65534';
  t.after(() => rm(fallback, { recursive: true, force: true }));
  const p = startPilot({ PATH: '/usr/bin:/bin' }, { user: 65534 });
  t.after(() => p.kill());
  await p.waitForLog((l) => String(l.msg).startsWith('started:'), 30_000);
  assert.ok(p.logs.some((l) => l.level === 40 && /PILOT_RUN_DIR: \/run\/haproxy-pilot is not writable for this user: using \/tmp\/haproxy-pilot-65534/.test(String(l.msg))), p.lines.join('\n'));
  assert.ok(existsSync(join(fallback, 'haproxy.cfg')));
  assert.equal((await p.http('/', 8080)).status, 200);
});

test("scripts/ensure-deps.sh finds an installed haproxy outside PATH instead of installing it", async () => {
  const root = new URL('../../', import.meta.url).pathname;
  const r = await execa(join(root, 'scripts', 'ensure-deps.sh'), ['--dry-run', 'run'], { env: { PATH: '/usr/bin:/bin' }, extendEnv: false, reject: false });
  assert.equal(r.exitCode, 0, r.stdout + r.stderr);
  assert.doesNotMatch(r.stdout + r.stderr, /haproxy/);
});
