/**
 * The full binary as PID 1 with a real HAProxy: what the environment, templates and the discovery
 * file render to, and how changes are applied (or not) while HAProxy keeps serving.
 * Every pilot runs in its own network namespace, so :8080, :5000, :1936 and :7778 are its own;
 * requests go in through nsenter / ip netns exec. DNS is a real dnsmasq inside the namespace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startPilot, eventually } from './support/pilot-process.js';
import { startDnsmasq } from './support/dnsmasq.js';
import {
  backendCommand,
  launchPilot,
  netnsFor,
  runPilotCommand,
  selfSignedCert,
  startPoller,
  tempDir,
  writeFileAtomic,
  type RunningPilot,
} from './support/render-harness.js';

const EMBEDDED_TEMPLATES = new URL('../../templates/', import.meta.url);
const sha256 = (text: string) => createHash('sha256').update(text).digest('hex');

/** GET through the pilot's namespace; the body of a render-backend answer parsed. */
async function getJson(pilot: RunningPilot, path: string, port: number): Promise<{ server: string; host: string | null; path: string } | undefined> {
  const r = await pilot.p.http(path, port);
  if (r.status !== 200) return undefined;
  try {
    return JSON.parse(r.body) as { server: string; host: string | null; path: string };
  } catch {
    return undefined;
  }
}

/** Discovery file text: one service `web` with the given named servers. */
function discovery(servers: { name: string; address: string }[]): string {
  return `services:\n  web:\n    servers:\n${servers.map((s) => `      - { name: ${s.name}, address: "${s.address}" }\n`).join('')}`;
}

test("seed 003 from environment variables alone: resolvers, a DNS-named TLS service with Host header and check, a program backend", async (t) => {
  const dir = await tempDir(t, 'pilot-render-seed003-');
  const netns = await netnsFor(t);
  // The DNS server and its answer exist before haproxy-pilot starts, in the pilot's namespace.
  const dns = await startDnsmasq({ port: 5353, hosts: { 'myservice.test': ['127.0.0.1'] }, enter: netns.enter });
  t.after(() => dns.stop());
  const tls = await selfSignedCert(dir, 'myservice.test');
  const site = join(dir, 'site');
  await mkdir(site);
  await writeFile(join(site, 'index.html'), 'hello from the seed 003 program\n');

  const env: Record<string, string> = {
    // resolvers blocks: a real local one, and seed 003's AWS one (rendered, never asked here)
    RESOLVER_LOCAL: '127.0.0.1:5353',
    RESOLVER_LOCAL_HOLD_VALID: '10s',
    RESOLVER_AWS: 'aws',
    RESOLVER_AWS_HOLD_VALID: '60s',
    // seed 003 "Say my name": a DNS-named service over TLS, verify none, with a Host header
    SERVICE_MYSERVICE_BIND: '127.0.0.1:8082',
    SERVICE_MYSERVICE_DNS: 'myservice.test:8443',
    SERVICE_MYSERVICE_RESOLVERS: 'local',
    SERVICE_MYSERVICE_SSL: 'on',
    SERVICE_MYSERVICE_SSL_VERIFY: 'off',
    SERVICE_MYSERVICE_CHECK_PATH: '/healthz',
    SERVICE_MYSERVICE_HOST_HEADER: 'api.example.org',
    PROGRAM_TLSAPP: backendCommand('tlsapp', 8443, tls),
    // seed 003 "Docker Cake": listen :8080 → a python http.server started as a program
    SERVICE_MYAPP_BIND: ':8080',
    SERVICE_MYAPP_SERVERS: '127.0.0.1:8081',
    SERVICE_MYAPP_CHECK_PATH: '/',
    PROGRAM_MYSERVER: `python3 -m http.server 8081 --bind 127.0.0.1 --directory ${site}`,
  };
  const pilot = await launchPilot(t, env, { netns });

  // Traffic flows through the DNS-resolved TLS server, which sees the Host header.
  const answer = await eventually('myservice answers through HAProxy', () => getJson(pilot, '/some/path', 8082), 20_000);
  assert.deepEqual(answer, { server: 'tlsapp', port: 8443, host: 'api.example.org', path: '/some/path' });
  const cake = await eventually('myapp answers', async () => {
    const r = await pilot.p.http('/', 8080);
    return r.status === 200 ? r : undefined;
  }, 20_000);
  assert.match(cake.body, /hello from the seed 003 program/);

  // The health check runs over TLS (L7OK), against the name dnsmasq gave.
  const password = (await readFile(join(pilot.runDir, 'stats-password'), 'utf8')).trim();
  const row = await eventually('the stats CSV shows myservice checked L7OK', async () => {
    const r = await pilot.p.http('/haproxy?stats;csv', 1936, ['-u', `admin:${password}`]);
    return r.body.split('\n').find((l) => l.startsWith('myservice,srv') && l.includes('L7OK'));
  }, 20_000);
  assert.ok(row);

  // render and check on the same environment print that config and succeed.
  const cliEnv = { ...env, PILOT_RUN_DIR: join(dir, 'cli-run') };
  const render = await runPilotCommand(['render'], cliEnv);
  assert.equal(render.code, 0, render.stderr + render.stdout);
  assert.match(render.stdout, /^resolvers local\n\s+nameserver \S+ 127\.0\.0\.1:5353\n(\s+.*\n)*?\s+hold valid 10s$/m);
  assert.match(render.stdout, /^resolvers aws\n\s+nameserver \S+ 169\.254\.169\.253:53\n(\s+.*\n)*?\s+hold valid (60s|1m)$/m);
  assert.match(render.stdout, /^\s+server-template \S+ \d+ myservice\.test:8443 .*resolvers local.*$/m);
  assert.match(render.stdout, /^\s+server-template .* ssl verify none( |$)/m);
  assert.match(render.stdout, /^\s+http-request set-header Host api\.example\.org$/m);
  const check = await runPilotCommand(['check'], cliEnv);
  assert.equal(check.code, 0, check.stderr + check.stdout);
  assert.match(check.stdout, /valid/);
});

test('an invalid template keeps the running config; /health says why; fixing it heals', async (t) => {
  const templates = await tempDir(t, 'pilot-render-templates-');
  await mkdir(join(templates, 'partials'));
  const embedded = await readFile(new URL('partials/services.hbs', EMBEDDED_TEMPLATES), 'utf8');
  // The partial override adds a response header, so traffic shows which version is live.
  const withHeader = (v: string) => embedded.replace(/^(\s+bind .*)$/m, `$1\n    http-response set-header X-Template ${v}`);
  assert.notEqual(withHeader('one'), embedded, 'the embedded services partial has a bind line to extend');
  const partial = join(templates, 'partials', 'services.hbs');
  await writeFile(partial, withHeader('one'));

  const pilot = await launchPilot(t, {
    PILOT_TEMPLATES: templates,
    SERVICE_WEB_BIND: ':8080',
    SERVICE_WEB_SERVERS: '127.0.0.1:9001',
    PROGRAM_WEB: backendCommand('web', 9001),
  });
  const header = async () => /^x-template: (\S+)/im.exec((await pilot.p.http('/', 8080, ['-i'])).body)?.[1];
  assert.equal(await eventually('served with the override', header), 'one');
  const before = await pilot.status();

  // Break the partial (an unclosed block) and ask for a reload.
  await writeFile(partial, withHeader('two').replace('{{#each services}}', '{{#each services}'));
  await pilot.p.signal('SIGHUP');
  const sick = await eventually('/health turns 503', async () => {
    const h = await pilot.health();
    return h.status === 503 ? h : undefined;
  }, 15_000);
  assert.equal(sick.body.ok, false);
  assert.match((sick.body.reasons ?? []).join('\n'), /services\.hbs/);
  // HAProxy still runs the old config in the same worker.
  const during = await pilot.status();
  assert.deepEqual(during.haproxy.workers, before.haproxy.workers);
  assert.equal(during.apply.reloads, before.apply.reloads);
  assert.equal(await header(), 'one');
  assert.match(JSON.stringify(during), /services\.hbs/, '/status shows the template error');

  // Fix it: the next reload applies the new version and health comes back.
  await writeFile(partial, withHeader('two'));
  await pilot.p.signal('SIGHUP');
  await eventually('/health is 200 again', async () => (await pilot.health()).status === 200, 15_000);
  assert.equal(await eventually('served with the fixed override', async () => ((await header()) === 'two' ? 'two' : undefined), 15_000), 'two');
  const after = await pilot.status();
  assert.equal(after.apply.reloads, before.apply.reloads + 1);
  assert.notDeepEqual(after.haproxy.workers, before.haproxy.workers);
});

test('an unchanged render does nothing: no reload, same worker', async (t) => {
  const dir = await tempDir(t, 'pilot-render-same-');
  const file = join(dir, 'discovery.yaml');
  const text = discovery([{ name: 'app', address: '127.0.0.1:9001' }]);
  await writeFile(file, text);
  const pilot = await launchPilot(t, { DISCOVERY_FILE: file, PROGRAM_APP: backendCommand('app', 9001) });
  assert.equal((await eventually('served', () => getJson(pilot, '/', 5000), 15_000)).server, 'app');
  const before = await pilot.status();
  const nones = () => pilot.p.logs.filter((l) => l.msg === 'applied (none)').length;
  const seen = nones();

  // The same bytes again (replaced by rename, then rewritten in place)…
  await writeFileAtomic(file, text);
  await writeFile(file, text);
  // …then different bytes that render the same config (a comment, flow style): this one does
  // reach the loop and the applier, which must find nothing to do.
  await writeFileAtomic(file, `# rewritten by a tool\nservices: { web: { servers: [ { address: "127.0.0.1:9001", name: app } ] } }\n`);
  await eventually('the rewritten file was rendered and found unchanged', () => nones() > seen, 15_000);

  const after = await pilot.status();
  assert.equal(after.apply.reloads, before.apply.reloads);
  assert.equal(after.haproxy.reloads, before.haproxy.reloads);
  assert.deepEqual(after.haproxy.workers, before.haproxy.workers);
  assert.equal(after.apply.configHash, before.apply.configHash);
  assert.equal(after.apply.runtimeOps, before.apply.runtimeOps);
});

test('a burst of 50 changes that each need a reload gives few reloads while HAProxy keeps serving', async (t) => {
  const dir = await tempDir(t, 'pilot-render-burst-');
  const file = join(dir, 'discovery.yaml');
  // Each change adds a service with a listen of its own: a new section, which only a reload brings.
  const services = (n: number) =>
    `services:\n  web:\n    servers:\n      - { name: app, address: "127.0.0.1:9001" }\n` +
    Array.from({ length: n }, (_, i) => `  svc${i + 1}:\n    mode: tcp\n    route: { port: ${7001 + i} }\n    servers:\n      - { name: app, address: "127.0.0.1:9001" }\n`).join('');
  await writeFile(file, services(0));
  const pilot = await launchPilot(t, { DISCOVERY_FILE: file, PROGRAM_APP: backendCommand('app', 9001) });
  await eventually('served', () => getJson(pilot, '/', 5000), 15_000);
  const before = await pilot.status();

  const poller = startPoller(t, pilot.netns, 'http://127.0.0.1:5000/');
  // 50 real changes, a few milliseconds apart.
  for (let n = 1; n <= 50; n++) {
    await writeFileAtomic(file, services(n));
    await new Promise((r) => setTimeout(r, 5));
  }
  const configPath = join(pilot.runDir, 'haproxy.cfg');
  const final = await eventually('the last state is applied', async () => {
    const [text, status] = await Promise.all([readFile(configPath, 'utf8'), pilot.status()]);
    return /^listen svc50$/m.test(text) && status.apply.configHash === sha256(text) && status.apply.lastApply?.ok ? status : undefined;
  }, 30_000);
  // Keep polling a moment across the new worker, then look at what the client saw.
  await eventually('traffic after the last reload', () => getJson(pilot, '/', 5000));
  const seen = await poller.stop();

  const text = await readFile(configPath, 'utf8');
  for (let i = 1; i <= 50; i++) assert.match(text, new RegExp(`^listen svc${i}$`, 'm'));
  const reloads = final.apply.reloads - before.apply.reloads;
  assert.ok(reloads >= 1 && reloads <= 5, `50 changes gave ${reloads} reloads`);
  assert.equal(seen.failed, 0, `failed requests: ${seen.errors.join('; ')}`);
  assert.ok(seen.ok > 0);
});

test('a server address change goes through the runtime API without a reload', async (t) => {
  const dir = await tempDir(t, 'pilot-render-addr-');
  const file = join(dir, 'discovery.yaml');
  await writeFile(file, discovery([{ name: 'app', address: '127.0.0.1:9001' }]));
  const pilot = await launchPilot(t, {
    DISCOVERY_FILE: file,
    PROGRAM_ALPHA: backendCommand('alpha', 9001),
    PROGRAM_BETA: backendCommand('beta', 9002),
  });
  assert.equal((await eventually('alpha serves', () => getJson(pilot, '/', 5000), 15_000)).server, 'alpha');
  const before = await pilot.status();

  await writeFileAtomic(file, discovery([{ name: 'app', address: '127.0.0.1:9002' }]));
  await eventually('beta serves', async () => ((await getJson(pilot, '/', 5000))?.server === 'beta' ? true : undefined), 15_000);
  const after = await pilot.status();
  assert.equal(after.apply.lastApply?.kind, 'runtime');
  assert.ok(after.apply.runtimeOps > before.apply.runtimeOps);
  assert.equal(after.apply.reloads, before.apply.reloads);
  assert.deepEqual(after.haproxy.workers, before.haproxy.workers);
  // Every request now goes to the new address, and the file on disk says so for the next reload.
  for (let i = 0; i < 3; i++) assert.equal((await getJson(pilot, '/', 5000))?.server, 'beta');
  assert.match(await readFile(join(pilot.runDir, 'haproxy.cfg'), 'utf8'), /^\s+server app 127\.0\.0\.1:9002\b/m);
});

test('injection attempts through the environment: exit 78, one error naming the variable, HAProxy never started', async (t) => {
  const base = { SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '127.0.0.1:9001' };
  const cases: [string, string][] = [
    ['SERVICE_WEB_HOST_HEADER', 'example.org\n    http-request deny'],
    ['SERVICE_WEB_CHECK_PATH', '/ok#x'],
    ['SERVICE_WEB_HOST_HEADER', 'exa"mple.org'],
    ['SERVICE_WEB_CHECK_PATH', "/it's"],
    ['SERVICE_WEB_SERVERS', '127.0.0.1:9001 backup'],
    ['SERVICE_WEB_BIND', ':8080 ssl crt /etc/passwd'],
    ['SERVICE_WEB_HOST_HEADER', '${HOME}'],
    ['SERVICE_WEB_HOST_HEADER', 'a'.repeat(5000)],
  ];
  for (const [name, value] of cases) {
    const p = startPilot({ PILOT_RUN_DIR: join(await tempDir(t, 'pilot-render-inj-'), 'run'), ...base, [name]: value });
    t.after(() => p.kill());
    const { code } = await p.exited;
    const label = `${name}=${JSON.stringify(value.slice(0, 40))}`;
    assert.equal(code, 78, `${label}: exit code; output:\n${p.lines.join('\n')}`);
    const errors = p.logs.filter((l) => (l.level ?? 0) >= 50);
    assert.equal(errors.length, 1, `${label}: one error line; got:\n${p.lines.join('\n')}`);
    assert.ok(String(errors[0]!.msg).includes(name), `${label}: the error names the variable: ${errors[0]!.msg}`);
    assert.ok(!p.logs.some((l) => l.msg === 'starting haproxy master'), `${label}: HAProxy was started`);
    assert.ok(!p.lines.some((l) => /\[NOTICE\]|haproxy version is/.test(l)), `${label}: HAProxy printed something`);
  }
});

test('a bad value in PILOT_CONFIG (yaml): exit 78 naming the file, line and key', async (t) => {
  const dir = await tempDir(t, 'pilot-render-yaml-');
  const file = join(dir, 'pilot.yaml');
  // line 5 holds the bad value
  await writeFile(file, ['services:', '  web:', '    bind: ":8080"', '    servers: "127.0.0.1:9001"', '    host_header: "bad host\\n    http-request deny"', ''].join('\n'));
  const p = startPilot({ PILOT_RUN_DIR: join(dir, 'run'), PILOT_CONFIG: file });
  t.after(() => p.kill());
  const { code } = await p.exited;
  assert.equal(code, 78, p.lines.join('\n'));
  const errors = p.logs.filter((l) => (l.level ?? 0) >= 50);
  assert.equal(errors.length, 1, p.lines.join('\n'));
  assert.match(String(errors[0]!.msg), new RegExp(`${file.replace(/[.]/g, '\\.')}:5\\b.*services\\.web\\.host_header`));
  assert.ok(!p.logs.some((l) => l.msg === 'starting haproxy master'));
});

test('stats: a generated password (file 0600, never logged), 401/200, the Prometheus exporter; STATS_AUTH=none', async (t) => {
  const pilot = await launchPilot(t, {});
  const file = join(pilot.runDir, 'stats-password');
  const mode = (await stat(file)).mode & 0o777;
  assert.equal(mode, 0o600, `mode ${mode.toString(8)}`);
  const password = (await readFile(file, 'utf8')).trim();
  assert.ok(password.length >= 16);
  assert.ok(pilot.p.lines.some((l) => l.includes(file)), 'the log names the password file');

  assert.equal((await pilot.p.http('/haproxy?stats', 1936)).status, 401);
  assert.equal((await pilot.p.http('/haproxy?stats', 1936, ['-u', 'admin:wrong'])).status, 401);
  const page = await pilot.p.http('/haproxy?stats', 1936, ['-u', `admin:${password}`]);
  assert.equal(page.status, 200);
  assert.match(page.body, /Statistics Report/);
  const metrics = await pilot.p.http('/metrics', 1936);
  assert.equal(metrics.status, 200);
  assert.match(metrics.body, /^haproxy_process_nbthread \d+/m);
  assert.match(metrics.body, /^haproxy_frontend_http_requests_total\{proxy="stats"\}/m);
  assert.ok(!pilot.p.lines.some((l) => l.includes(password)), 'the password appears in the output');

  const open = await launchPilot(t, { STATS_AUTH: 'none' });
  assert.equal((await open.p.http('/haproxy?stats', 1936)).status, 200);
});

test('a SIGHUP whose config haproxy -c rejects leaves the programs (same pids) and the settings as they were', async (t) => {
  const dir = await tempDir(t, 'pilot-render-sighup-');
  const yaml = join(dir, 'pilot.yaml');
  const settings = (maxconn: number, extra: { defaults?: string[]; other?: boolean } = {}) =>
    [
      'haproxy:',
      `  maxconn: ${maxconn}`,
      ...(extra.defaults ? ['  defaults:', ...extra.defaults.map((l) => `    - "${l}"`)] : []),
      'programs:',
      '  web:',
      `    command: "${backendCommand('web', 9001)}"`,
      ...(extra.other ? ['  other:', `    command: "${backendCommand('other', 9002)}"`] : []),
    ].join('\n') + '\n';
  await writeFile(yaml, settings(1000));
  const pilot = await launchPilot(t, { PILOT_CONFIG: yaml, SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '127.0.0.1:9001' });
  await eventually('served', () => getJson(pilot, '/', 8080), 15_000);
  const live = () => readFile(join(pilot.runDir, 'haproxy.cfg'), 'utf8');
  const pids = (s: { programs: { name: string; pid?: number }[] }) => Object.fromEntries(s.programs.map((p) => [p.name, p.pid]));
  const before = await pilot.status();
  assert.match(await live(), /^\s+maxconn 1000$/m);

  // New settings with a line HAProxy refuses, and a new program: none of it may take effect.
  await writeFile(yaml, settings(2000, { defaults: ['no_such_keyword on'], other: true }));
  await pilot.p.signal('SIGHUP');
  await eventually('the rejected reload shows on /health', async () => ((await pilot.health()).status === 503 ? true : undefined), 15_000);
  const during = await pilot.status();
  assert.deepEqual(pids(during), pids(before), 'the same programs, with the same pids');
  assert.match(await live(), /^\s+maxconn 1000$/m, 'the old settings are in force');
  assert.deepEqual(during.haproxy.workers, before.haproxy.workers);
  assert.equal(during.apply.lastApply?.error?.code, 'E_CHECK');

  // Fixed: the new settings and the new program take effect together, the old program stays.
  await writeFile(yaml, settings(2000, { other: true }));
  await pilot.p.signal('SIGHUP');
  await eventually('healthy again', async () => ((await pilot.health()).status === 200 ? true : undefined), 15_000);
  const after = await eventually('the new program runs', async () => {
    const s = await pilot.status();
    return s.programs.some((p) => p.name === 'other' && p.pid) ? s : undefined;
  }, 15_000);
  assert.equal(pids(after)['web'], pids(before)['web']);
  assert.match(await live(), /^\s+maxconn 2000$/m);
});
