/**
 * Seed 000 (haproxy-api next to Sidecar) end to end: the real binary as PID 1 in a network
 * namespace, real HAProxy, the Sidecar protocol fixture (support/sidecar-fixture.ts: it follows
 * Sidecar's wire format, it is NOT a real Sidecar, which cannot be installed here) and the
 * containers it announces, all inside the namespace. Sidecar pushes to the pilot the way a
 * Sidecar configured for haproxy-api would (`LISTENERS_URLS=http://<host>:7778/update`), from a
 * second, non-loopback address of the namespace (a veth), as from another host.
 *
 * One pilot serves the push-mode steps in order (bootstrap, a pushed instance under load, a
 * drained instance, a new service, reordered pushes, a lost push, hostile state, the control
 * endpoints); follower mode (`-F`, HAPROXY_API_FOLLOW) and haproxy-api.toml (`-f`) get pilots of
 * their own.
 */
import { after, before, describe, it, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNetns, eventually, startPilot, type LogLine, type Netns, type PilotProcess } from './support/pilot-process.js';
import { addOtherAddress, startBackendsIn, startSidecarIn, type NetnsBackends, type NetnsSidecar } from './support/seeds-sidecar.js';
import { distinct, sample, status } from './support/seeds-traffic.js';
import { startWrk } from './support/wrk.js';

const ORDERS = 'http://127.0.0.1:10100/';
const BILLING = 'http://127.0.0.1:10200/';
/** Sidecar's records of the containers the backends process plays. */
const instance = (id: string, port: number, name = 'orders', servicePort = 10100) => ({ host: `web-${id}`, id, name, ports: [{ Port: port, ServicePort: servicePort, IP: '127.0.0.1' }] });
const BACKENDS = ['a1@127.0.0.1:8101', 'a2@127.0.0.1:8102', 'a3@127.0.0.1:8103', 'a4@127.0.0.1:8104', 'b1@127.0.0.1:8201'];

async function haproxyState(pilot: PilotProcess): Promise<{ workers: number[]; reloads: number }> {
  const s = await status(pilot);
  return { workers: (s.haproxy as { workers: number[] }).workers, reloads: (s.apply as { reloads: number }).reloads };
}

/** Log lines from index `from` on. */
const since = (pilot: PilotProcess, from: number): LogLine[] => pilot.logs.slice(from);
const applies = (pilot: PilotProcess, from: number): LogLine[] => since(pilot, from).filter((l) => typeof l.msg === 'string' && l.msg.startsWith('applied ('));
const ops = (l: LogLine): string[] => (l.ops as string[] | undefined) ?? [];

async function waitLog(pilot: PilotProcess, from: number, what: string, pred: (l: LogLine) => boolean, timeoutMs = 20_000): Promise<LogLine> {
  return eventually(what, () => since(pilot, from).find(pred), timeoutMs);
}

/** Which servers answer `url` (fresh connections), waiting until it is exactly `want`. */
const serving = (pilot: PilotProcess, url: string, want: string) =>
  eventually(`${url} is served by ${want}`, async () => (distinct(await sample(pilot, url, 12)).join() === want ? true : undefined), 20_000);

/** curl inside the namespace; `from`: the address the request comes from (its destination host too). */
async function curl(pilot: PilotProcess, method: string, url: string, extra: string[] = []): Promise<{ status: number; body: string }> {
  const r = await pilot.exec(['curl', '-s', '-X', method, '-o', '-', '-w', '\n%{http_code}', '--max-time', '15', ...extra, url], { timeoutMs: 30_000 });
  const at = r.stdout.lastIndexOf('\n');
  return { status: Number(r.stdout.slice(at + 1)) || 0, body: r.stdout.slice(0, Math.max(0, at)) };
}

interface World {
  netns: Netns;
  other: string;
  dir: string;
  sc: NetnsSidecar;
  backends: NetnsBackends;
}

async function world(t: { after(fn: () => Promise<void> | void): void }, name: string): Promise<World> {
  const netns = await createNetns();
  t.after(() => netns.remove());
  const other = await addOtherAddress(netns);
  const dir = await mkdtemp(join(tmpdir(), `pilot-seed000-${name}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const backends = await startBackendsIn(netns, BACKENDS);
  t.after(() => backends.proc.stop());
  const sc = await startSidecarIn(netns);
  t.after(() => sc.proc.stop());
  return { netns, other, dir, sc, backends };
}

async function launch(t: { after(fn: () => Promise<void> | void): void }, w: World, env: Record<string, string>, args: string[] = []): Promise<PilotProcess> {
  const pilot = startPilot({ STATS_AUTH: 'none', PILOT_RUN_DIR: join(w.dir, 'run'), ...env }, { netns: w.netns, args });
  t.after(() => pilot.kill());
  await pilot.waitForLog((l) => String(l.msg).startsWith('started:'), 40_000);
  return pilot;
}

describe('push mode: Sidecar pushes to http://<host>:7778/update as it would to haproxy-api', () => {
  const cleanups: (() => Promise<void> | void)[] = [];
  const scope = { after: (fn: () => Promise<void> | void) => void cleanups.unshift(fn) };
  let w: World;
  let pilot: PilotProcess;
  let pushUrl: string;
  /** An event body of the bootstrap state: older than anything pushed later. */
  let oldEvent: string;

  before(async () => {
    w = await world(scope, 'push');
    await w.sc.add(instance('a1', 8101));
    oldEvent = await w.sc.eventBody('a1');
    pushUrl = `http://${w.other}:7778/update`;
    await w.sc.addListener(pushUrl);
    pilot = await launch(scope, w, { SIDECAR_STATE_URL: `${w.sc.url}/api/state.json` });
  });
  after(async () => {
    for (const fn of cleanups) await fn();
  });

  it('bootstraps from the state URL and serves traffic', async () => {
    await serving(pilot, ORDERS, 'a1');
    assert.ok((await w.sc.requests()).includes('GET /api/state.json 200'), 'the state URL was read');
    const cfg = await readFile(join(w.dir, 'run', 'haproxy.cfg'), 'utf8');
    assert.match(cfg, /^listen orders-10100\n {4}bind :10100\n/m, "haproxy-api's proxy name and bind");
    assert.match(cfg, /^ {4}server web-a1-a1 127\.0\.0\.1:8101 /m);
  });

  it('a pushed new instance serves after one pass, with 0 reloads and 0 failed requests under wrk; a drained one finishes its in-flight request and gets no new ones', async (t) => {
    const before = await haproxyState(pilot);
    const wrk = startWrk(ORDERS, { connections: 8, threads: 1, close: false, maxSeconds: 120, enter: w.netns.enter });
    t.after(() => void wrk.stop().catch(() => undefined));

    // A new instance, pushed.
    let mark = pilot.logs.length;
    await w.sc.add(instance('a2', 8102));
    await w.sc.settle();
    assert.deepEqual((await w.sc.deliveries()).filter((d) => d.url === pushUrl).map((d) => d.status), [200], 'the push was answered 200 at once');
    const added = await waitLog(pilot, mark, 'the push applied', (l) => ops(l).some((o) => o.startsWith('add server orders-10100/web-a2-a2 ')));
    assert.equal(added.msg, 'applied (runtime)');
    // (A pass that found nothing to change may come first: the state HAProxy already runs.)
    assert.deepEqual(applies(pilot, mark).filter((l) => l.kind !== 'none'), [added], 'the one pass after the push applied it');
    await eventually('wrk traffic reaches a2', async () => ((await w.backends.counts()).a2! > 0 ? true : undefined));

    // A request in flight at a2 (held open by the server), then a2 drains.
    const inFlight: Promise<{ stdout: string }>[] = [];
    const totalHeld = async (): Promise<number> => Object.values(await w.backends.held()).reduce((a, b) => a + b, 0);
    // One at a time (each lands somewhere before the next starts) until one is held at a2.
    for (let i = 0; i < 30 && (await w.backends.held()).a2 === 0; i++) {
      const before = await totalHeld();
      inFlight.push(pilot.exec(['curl', '-s', '--max-time', '60', `${ORDERS}hold`], { timeoutMs: 70_000 }));
      await eventually('the held request lands', async () => ((await totalHeld()) > before ? true : undefined));
    }
    assert.equal((await w.backends.held()).a2, 1, 'a request in flight at a2');
    mark = pilot.logs.length;
    await w.sc.setStatus('a2', 4); // Draining: POST /api/services/a2/drain on Sidecar
    const drained = await waitLog(pilot, mark, 'the drain applied', (l) => ops(l).some((o) => o.includes('orders-10100/web-a2-a2')));
    assert.equal(drained.msg, 'applied (runtime)');
    assert.deepEqual(ops(drained), ['set server orders-10100/web-a2-a2 state drain'], "HAProxy's drain: no new requests, in-flight ones finish");
    const answers = await sample(pilot, ORDERS, 16);
    assert.ok(!answers.includes('a2'), `no new request reaches a2 (${answers.join()})`);
    const reached = (await w.backends.counts()).a2!;
    assert.deepEqual(distinct(await sample(pilot, ORDERS, 16)), ['a1']);
    assert.equal((await w.backends.counts()).a2, reached, 'neither our requests nor wrk reach a2 any more');
    assert.equal((await w.backends.held()).a2, 1, 'the in-flight request is still open');
    await w.backends.release();
    const outputs = (await Promise.all(inFlight)).map((r) => r.stdout.trim());
    assert.ok(outputs.includes('a2'), `the in-flight request at a2 completed (${outputs.join()})`);

    const load = await wrk.stop();
    const afterState = await haproxyState(pilot);
    assert.ok(load.requests > 100, `wrk ran: ${load.requests} requests`);
    assert.equal(load.failed, 0, `no failed request:\n${load.raw}`);
    assert.deepEqual(afterState.workers, before.workers, 'the same HAProxy worker served throughout');
    assert.equal(afterState.reloads, before.reloads, 'no reload');
  });

  it('a new service takes exactly one reload; an instance back from Draining in the same push serves after it', async () => {
    const { reloads } = await haproxyState(pilot);
    // One push carrying both changes (the fixture encodes the state when it sends).
    await w.sc.hold();
    await w.sc.setStatus('a2', 0);
    await w.sc.add(instance('b1', 8201, 'billing', 10200));
    const mark = pilot.logs.length;
    await w.sc.release();
    await serving(pilot, BILLING, 'b1');
    await serving(pilot, ORDERS, 'a1,a2');
    // The new worker serves before the pilot has confirmed the reload: wait for the confirmation.
    await waitLog(pilot, mark, 'the reload confirmed', (l) => l.msg === 'applied (reload)');
    const shown = () => JSON.stringify(applies(pilot, mark).map((l) => [l.msg, l.reason, l.planReason, l.ops]));
    assert.equal((await haproxyState(pilot)).reloads, reloads + 1, `one reload: ${shown()}`);
    assert.deepEqual(applies(pilot, mark).map((l) => l.msg), ['applied (reload)'], shown());
  });

  it('out-of-order and duplicate pushes are ignored', async () => {
    const file = join(w.dir, 'event.json');
    const mark = pilot.logs.length;
    const held = (await w.sc.state()).LastChanged;
    await writeFile(file, oldEvent);
    assert.equal((await curl(pilot, 'POST', pushUrl, ['--data-binary', `@${file}`])).status, 200, 'answered like haproxy-api');
    await writeFile(file, await w.sc.eventBody('b1'));
    assert.equal((await curl(pilot, 'POST', pushUrl, ['--data-binary', `@${file}`])).status, 200);
    await waitLog(pilot, mark, 'the older push ignored', (l) => l.msg === 'sidecar: push ignored (not newer than the state held)' && l.outcome === 'older');
    await waitLog(pilot, mark, 'the duplicate ignored', (l) => l.msg === 'sidecar: push ignored (not newer than the state held)' && l.outcome === 'duplicate');
    // The older push is answered by a re-read, which finds nothing newer either.
    await waitLog(pilot, mark, 'the re-read', (l) => String(l.msg).endsWith(': nothing newer'));
    assert.deepEqual(applies(pilot, mark).filter((l) => l.msg !== 'applied (none)'), [], 'nothing applied');
    assert.equal(JSON.parse((await curl(pilot, 'GET', `http://${w.other}:7778/state`)).body).LastChanged, held, 'the state held did not go back');
    await serving(pilot, ORDERS, 'a1,a2');
  });

  it("Sidecar's empty-bodied retry is recovered by a re-read", async () => {
    const reads = (await w.sc.requests()).filter((r) => r === 'GET /api/state.json 200').length;
    const mark = (await w.sc.deliveries()).length;
    await w.sc.failNextAttempts(pushUrl, 1); // the only attempt with a body is lost
    await w.sc.add(instance('a3', 8103));
    await w.sc.settle();
    const d = (await w.sc.deliveries()).slice(mark);
    assert.deepEqual(d.map((x) => [x.attempt, x.bodyBytes > 0, x.status ?? 'lost']), [[1, true, 'lost'], [2, false, 400], [3, false, 400], [4, false, 400], [5, false, 400], [6, false, 400]]);
    await serving(pilot, ORDERS, 'a1,a2,a3');
    assert.ok((await w.sc.requests()).filter((r) => r === 'GET /api/state.json 200').length > reads, 'the state was re-read');
  });

  it('hostile state is skipped or refused with a log line; nothing reaches the config; the last good state is kept', async () => {
    const mark = pilot.logs.length;
    const cfgPath = join(w.dir, 'run', 'haproxy.cfg');
    const evil = '\n  server evil 6.6.6.6:80';
    await w.sc.add({ host: 'web-x', id: 'evilname', name: `web${evil}`, ports: [{ Port: 8104, ServicePort: 10300, IP: '127.0.0.1' }] });
    await w.sc.add({ host: `web-x${evil}`, id: `evilid${evil}`, name: 'orders', ports: [{ Port: 8103, ServicePort: 10100, IP: '127.0.0.1' }] });
    await w.sc.add({ host: 'web-x', id: 'evilip', name: 'orders', ports: [{ Port: 8104, ServicePort: 10100, IP: `127.0.0.1${evil}` }] });
    await w.sc.add({ host: 'web-x', id: 'bigport', name: 'orders', ports: [{ Port: 99999, ServicePort: 10100, IP: '127.0.0.1' }] });
    await w.sc.add({ host: 'web-x', id: 'bigserviceport', name: 'other', ports: [{ Port: 8104, ServicePort: 70000, IP: '127.0.0.1' }] });
    await w.sc.add({ host: 'web-x', id: 'badmode', name: 'orders', proxyMode: `tcp${evil}`, ports: [{ Port: 8104, ServicePort: 10100, IP: '127.0.0.1' }] });
    const a1 = (await w.sc.state()).Servers['web-a1']!.Services.a1!;
    await w.sc.inject('web-x', 'wrongtypes', { ...a1, ID: 'wrongtypes', Status: 'Alive', Ports: [{ Type: 'tcp', Port: '8104', ServicePort: 10100, IP: '127.0.0.1' }] });
    await w.sc.inject('web-y', 'notanobject', 'x'.repeat(100));
    await w.sc.settle();
    await serving(pilot, 'http://127.0.0.1:10300/', 'a4');
    await serving(pilot, ORDERS, 'a1,a2,a3');

    const cfg = await readFile(cfgPath, 'utf8');
    const words = cfg.split('\n').map((l) => l.trim().split(/\s+/));
    assert.ok(!words.some((w) => w.includes('6.6.6.6:80') || (w[0] === 'server' && w[1] === 'evil')), 'nothing injected');
    assert.match(cfg, /^listen web---server-evil-6-6-6-6-80-10300$/m, "the hostile name became a safe proxy name (haproxy-api's sanitizeName)");
    const evilServer = words.find((w) => w[0] === 'server' && w[1]!.startsWith('web-x_'));
    assert.ok(evilServer && /^[A-Za-z0-9_.:-]+$/.test(evilServer[1]!) && evilServer[2] === '127.0.0.1:8103', `the hostile host and ID became one safe server name (${evilServer?.join(' ')})`);
    const skipped = (key: string) => since(pilot, mark).some((l) => l.level === 40 && l.key === key && String(l.msg).startsWith('sidecar: skipped Servers/'));
    for (const key of ['Servers/web-x/Services/evilip', 'Servers/web-x/Services/bigport', 'Servers/web-x/Services/bigserviceport', 'Servers/web-x/Services/badmode', 'Servers/web-x/Services/wrongtypes', 'Servers/web-y/Services/notanobject']) {
      assert.ok(skipped(key), `${key} skipped with a log line`);
    }

    // Refused pushes: the state held and the config stay.
    const held = JSON.parse((await curl(pilot, 'GET', `http://${w.other}:7778/state`)).body).LastChanged;
    const file = join(w.dir, 'bad.json');
    const refused = async (body: string | Buffer, status: number, logged: (l: LogLine) => boolean) => {
      const at = pilot.logs.length;
      await writeFile(file, body);
      const r = await curl(pilot, 'POST', pushUrl, ['-H', 'content-type: application/json', '--data-binary', `@${file}`]);
      assert.equal(r.status, status, r.body);
      await waitLog(pilot, at, `a log line for the ${status}`, logged);
      return r;
    };
    const unusable = (l: LogLine) => l.level === 40 && String(l.msg).startsWith('sidecar: push not usable (');
    await refused('{"State": {"Servers": ', 400, unusable);
    await refused(JSON.stringify({ State: { Servers: [], LastChanged: new Date().toISOString() } }), 400, unusable);
    await refused(JSON.stringify({ State: { Servers: {}, LastChanged: 12 } }), 400, unusable);
    await refused(Buffer.alloc(10 * 1024 * 1024, 0x20), 413, (l) => l.level === 40 && /larger than \d+ bytes/.test(String(l.msg)));
    assert.equal(JSON.parse((await curl(pilot, 'GET', `http://${w.other}:7778/state`)).body).LastChanged, held, 'the last good state is kept');
    assert.equal(await readFile(cfgPath, 'utf8'), cfg, 'the config is unchanged');

    // A Sidecar answering garbage: the source is stale, the last good state stays served.
    await w.sc.fault('garbage');
    const at = pilot.logs.length;
    await refused('', 400, (l) => String(l.msg).startsWith('sidecar: push not usable (the body is empty)'));
    await waitLog(pilot, at, 'the failed read', (l) => l.msg === 'sidecar: could not read the state; retrying' && /answered 200 with an unusable state/.test(String(l.err)));
    await serving(pilot, ORDERS, 'a1,a2,a3');
    await w.sc.fault('none');
  });

  it('/update answers from another host; /status, /metrics and POST /reload only on loopback; /health carries last_changed and last_service_changed', async () => {
    const remote = `http://${w.other}:7778`;
    assert.equal((await curl(pilot, 'GET', `${remote}/status`)).status, 403);
    assert.equal((await curl(pilot, 'GET', `${remote}/metrics`)).status, 403);
    const reload = await curl(pilot, 'POST', `${remote}/reload`);
    assert.equal(reload.status, 403);
    assert.match(reload.body, /loopback/);
    assert.equal((await curl(pilot, 'GET', 'http://127.0.0.1:7778/status')).status, 200);
    assert.equal((await curl(pilot, 'POST', `${remote}/update`)).status, 400, 'the push route answers anyone (an empty body: 400 and a re-read)');
    const deliveries = (await w.sc.deliveries()).filter((d) => d.url === pushUrl && d.attempt === 1);
    assert.ok(deliveries.length >= 10 && deliveries.every((d) => d.status === 200 || d.error !== undefined), "Sidecar's pushes to http://<host>:7778/update were taken");

    const svc = await w.sc.add(instance('a4', 8104));
    await w.sc.settle();
    const state = await w.sc.state();
    for (const url of [`${remote}/health`, 'http://127.0.0.1:7778/health']) {
      const h = await curl(pilot, 'GET', url);
      assert.equal(h.status, 200, h.body);
      const health = JSON.parse(h.body) as { ok: boolean; last_changed: string; last_service_changed: unknown };
      assert.equal(health.ok, true);
      assert.equal(health.last_changed, state.LastChanged, "haproxy-api's last_changed: the state's LastChanged");
      assert.deepEqual(health.last_service_changed, svc, "haproxy-api's last_service_changed: the pushed ChangeEvent's Service");
    }
  });
});

test('follower mode (-F host:port): adds and removals over /api/watch with no reload; the Sidecar restarting is survived', async (t) => {
  const w = await world(t, 'follow');
  await w.sc.add(instance('a1', 8101));
  const pilot = await launch(t, w, {}, ['-F', w.sc.hostPort]);
  await serving(pilot, ORDERS, 'a1');
  assert.ok((await w.sc.requests()).includes('GET /api/watch 200'), 'the watch stream is held');
  const before = await haproxyState(pilot);

  await w.sc.add(instance('a2', 8102));
  await serving(pilot, ORDERS, 'a1,a2');
  await w.sc.remove('a1'); // the container went away: a Tombstone
  await serving(pilot, ORDERS, 'a2');

  const mark = pilot.logs.length;
  await w.sc.stop();
  await waitLog(pilot, mark, 'the broken watch noticed', (l) => String(l.msg).startsWith('sidecar: the watch stream failed; reconnecting'));
  await w.sc.add(instance('a3', 8103)); // changed while the pilot could not see it
  await w.sc.start();
  await serving(pilot, ORDERS, 'a2,a3');
  assert.ok((await w.sc.requests()).filter((r) => r === 'GET /api/watch 200').length >= 2, 'the watch was re-opened');

  const after = await haproxyState(pilot);
  assert.deepEqual(after.workers, before.workers, 'the same HAProxy worker served throughout');
  assert.equal(after.reloads, before.reloads, 'no reload');
  assert.ok(!(await w.sc.requests()).some((r) => r.startsWith('POST')), 'nothing but the watch and state reads');
});

test('follower mode from the environment (HAPROXY_API_FOLLOW)', async (t) => {
  const w = await world(t, 'follow-env');
  await w.sc.add(instance('a1', 8101));
  const pilot = await launch(t, w, { HAPROXY_API_FOLLOW: w.sc.hostPort });
  await serving(pilot, ORDERS, 'a1');
  await w.sc.add(instance('a2', 8102));
  await serving(pilot, ORDERS, 'a1,a2');
  assert.ok(pilot.logs.some((l) => l.msg === `sidecar: following ${w.sc.hostPort}, and taking pushes on http://0.0.0.0:7778/update`));
});

test('haproxy-pilot -f haproxy-api.toml: the file haproxy-api ran with (state URL, bind IPs, ignored keys noted)', async (t) => {
  const w = await world(t, 'toml');
  await w.sc.add(instance('a1', 8101));
  const file = join(w.dir, 'haproxy-api.toml');
  // haproxy-api's sample file, pointed at the fixture and the namespace's second address.
  await writeFile(
    file,
    [
      '[haproxy_api]',
      'bind_ip = ""',
      'bind_port = 0',
      'logging_level = "info"',
      '',
      '[sidecar]',
      `state_url = "${w.sc.url}/state.json"`,
      '',
      '[haproxy]',
      `bind_ip = "${w.other}"`,
      'template = "templates/haproxy.cfg"',
      'config_file = "/tmp/haproxy.cfg"',
      'pid_file = "/tmp/haproxy.pid"',
      'reload_cmd = "haproxy -f /tmp/haproxy.cfg -p /tmp/haproxy.pid `[[ -f /tmp/haproxy.pid ]] && echo \\"-sf $(cat /tmp/haproxy.pid)\\"]`"',
      'verify_cmd = "haproxy -c -f /tmp/haproxy.cfg"',
      'use_hostnames = false',
      '',
    ].join('\n'),
  );
  const pilot = await launch(t, w, {}, ['-f', file]);
  const remote = `http://${w.other}:10100/`;
  await serving(pilot, remote, 'a1');
  assert.deepEqual(await sample(pilot, ORDERS, 1), ['<000>'], '[haproxy] bind_ip: the listen binds that address only');
  assert.match(await readFile(join(w.dir, 'run', 'haproxy.cfg'), 'utf8'), new RegExp(`^ {4}bind ${w.other.replace(/\./g, '\\.')}:10100$`, 'm'));
  assert.ok((await w.sc.requests()).includes('GET /state.json 200'), '[sidecar] state_url read');
  for (const key of ['template', 'config_file', 'pid_file', 'reload_cmd', 'verify_cmd']) {
    assert.ok(pilot.logs.some((l) => l.level === 30 && String(l.msg).includes(`haproxy.${key}`)), `[haproxy] ${key} noted at start`);
  }

  // [haproxy_api] bind_ip/bind_port: Sidecar pushes to http://<host>:7778/update.
  await w.sc.addListener(`http://${w.other}:7778/update`);
  await w.sc.add(instance('a2', 8102));
  await serving(pilot, remote, 'a1,a2');
  assert.deepEqual((await w.sc.deliveries()).map((d) => d.status), [200]);
});
