/**
 * Who may bind ports below 1024, the message that names the port and the fix, and file
 * capabilities read from a real file (setcap, when this machine has it and runs as root). The
 * container cases (podman --cap-drop=ALL with and without NET_BIND_SERVICE or the sysctl) are in
 * e2e/image.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPilotError } from '../errors.js';
import { assertCanBind, canBind, deniedPorts, fileHasBindCap, parseVfsCap, privilegedPortChecker, readBindAbility, resolveBin, type BindAbility } from './privileged-ports.js';

const nonRoot: BindAbility = { unprivilegedPortStart: 1024, euid: 99, bounding: false, ambient: false, inheritable: false, fileCap: false };

test('who may bind a port below 1024', () => {
  const rows: [string, Partial<BindAbility>, number, boolean][] = [
    ['any user, a port of 1024 or more', {}, 1024, true],
    ['uid 99, nothing', {}, 80, false],
    ['uid 99, ip_unprivileged_port_start=0', { unprivilegedPortStart: 0 }, 80, true],
    ['uid 99, ip_unprivileged_port_start=80 and port 79', { unprivilegedPortStart: 80 }, 79, false],
    ['uid 99, ambient (podman --cap-add)', { ambient: true, bounding: true }, 80, true],
    ['uid 99, in the bounding set only (Docker --cap-add)', { bounding: true }, 80, false],
    ['uid 99, file capability and bounding set', { fileCap: true, bounding: true }, 443, true],
    ['uid 99, file capability, --cap-drop=ALL', { fileCap: true, bounding: false }, 443, false],
    ['uid 99, file capability unknown', { fileCap: undefined }, 443, true],
    ['root', { euid: 0, bounding: true }, 80, true],
    ['root with --cap-drop=ALL', { euid: 0, bounding: false }, 80, false],
  ];
  for (const [what, a, port, ok] of rows) assert.equal(canBind(port, { ...nonRoot, ...a }), ok, what);
});

test('the ports refused are named with their proxy, and the message says how to fix it', () => {
  const cfg = ['global', '    daemon', 'frontend web', '    bind :80,:8080', '    bind 127.0.0.1:443', 'listen stats', '    bind :1936', 'backend b', '    server s 10.0.0.1:80'].join('\n');
  const denied = deniedPorts(cfg, nonRoot);
  assert.deepEqual(denied.map((d) => `${d.port.address}:${d.port.port} ${d.proxy}`), ['0.0.0.0:80 frontend web', '127.0.0.1:443 frontend web']);
  assert.throws(
    () => assertCanBind(cfg, nonRoot),
    (err: unknown) => {
      assert.ok(isPilotError(err, 'E_CONFIG'));
      assert.match(err.message, /^HAProxy cannot listen on 0\.0\.0\.0:80 \(frontend web\), 127\.0\.0\.1:443 \(frontend web\): ports below 1024 \(net\.ipv4\.ip_unprivileged_port_start\) need CAP_NET_BIND_SERVICE, and HAProxy runs as uid 99 without CAP_NET_BIND_SERVICE/);
      assert.match(err.message, /--sysctl net\.ipv4\.ip_unprivileged_port_start=0/);
      assert.match(err.message, /--cap-add=NET_BIND_SERVICE/);
      assert.match(err.message, /-p 80:8080/);
      return true;
    },
  );
  assert.doesNotThrow(() => assertCanBind(cfg, { ...nonRoot, unprivilegedPortStart: 0 }));
});

test('a later candidate that adds a port HAProxy cannot bind is refused before any reload, like a busy port', async () => {
  const check = privilegedPortChecker(nonRoot);
  await assert.rejects(check([{ address: '0.0.0.0', port: 443 }], []), (err: unknown) => isPilotError(err, 'E_PORT_BUSY') && /0\.0\.0\.0:443/.test(err.message) && /not reloading/.test(err.message));
  // One HAProxy holds already (its listeners pass to the new worker): fine.
  await check([{ address: '0.0.0.0', port: 80 }], [{ address: '0.0.0.0', port: 80 }]);
});

test('file capabilities: struct vfs_cap_data, and a real file', async (t) => {
  const cap = (magic: number, permitted: number) => {
    const b = Buffer.alloc(20);
    b.writeUInt32LE(magic, 0);
    b.writeUInt32LE(permitted, 4);
    return b;
  };
  assert.equal(parseVfsCap(cap(0x02000001, 1 << 10)), true, '+ep');
  assert.equal(parseVfsCap(cap(0x02000000, 1 << 10)), false, '+p only: HAProxy would have to raise it itself');
  assert.equal(parseVfsCap(cap(0x02000001, 1 << 12)), false, 'another capability');
  const haproxy = resolveBin('haproxy', process.env.PATH ?? '/usr/sbin:/usr/bin');
  assert.ok(haproxy, 'haproxy is on PATH');
  assert.equal(fileHasBindCap(haproxy), false, "Debian's haproxy has no file capability");
  if (process.getuid?.() !== 0 || !resolveBin('setcap', '/usr/sbin:/sbin:/usr/bin')) return void t.skip('setcap needs root and libcap2-bin');
  const dir = await mkdtemp(join(tmpdir(), 'pilot-fcap-'));
  try {
    const copy = join(dir, 'haproxy');
    await copyFile(haproxy, copy);
    execFileSync('setcap', ['cap_net_bind_service=+ep', copy]);
    assert.equal(fileHasBindCap(copy), true);
    execFileSync('setcap', ['cap_net_bind_service=+p', copy]);
    assert.equal(fileHasBindCap(copy), false);
    assert.equal(readBindAbility(copy).fileCap, false);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('this process: its capabilities and sysctl are read', () => {
  const a = readBindAbility('haproxy');
  assert.equal(typeof a.unprivilegedPortStart, 'number');
  assert.equal(a.euid, process.geteuid?.());
  if (a.euid === 0) assert.equal(canBind(80, a), a.bounding || a.inheritable || a.unprivilegedPortStart <= 80);
});
