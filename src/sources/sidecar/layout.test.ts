import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sanitizeName, sidecarLayout, TOMBSTONE_KEEP_MS, type SidecarLayoutOptions } from './layout.js';
import type { ServicesState, SidecarPort, SidecarService } from './state.js';

const T0 = '2024-05-01T10:00:00Z';

interface Inst {
  host: string;
  id: string;
  name?: string;
  ports?: Partial<SidecarPort>[];
  status?: number;
  mode?: string;
  updated?: string;
  hostname?: string;
}

function svc(i: Inst): SidecarService {
  return {
    ID: i.id,
    Name: i.name ?? 'orders',
    Image: 'img',
    Created: T0,
    Hostname: i.hostname ?? i.host,
    Ports: (i.ports ?? [{}]).map((p) => ({ Type: 'tcp', Port: 31000, ServicePort: 10100, IP: '10.0.1.11', ...p })),
    Updated: i.updated ?? T0,
    ProxyMode: i.mode ?? 'http',
    Status: i.status ?? 0,
  };
}

function state(insts: Inst[], lastChanged = '2024-05-01T10:05:00Z'): ServicesState {
  const Servers: ServicesState['Servers'] = {};
  for (const i of insts) {
    const server = (Servers[i.host] ??= { Name: i.host, Services: {}, LastUpdated: T0, LastChanged: T0 });
    server.Services[i.id] = svc(i);
  }
  return { Servers, LastChanged: lastChanged, ClusterName: 'default', Hostname: 'web-01' };
}

const opts: SidecarLayoutOptions = { source: 'sidecar' };

test('sanitizeName is haproxy-api\'s: everything outside [a-z0-9-] becomes a dash', () => {
  assert.equal(sanitizeName('orders'), 'orders');
  assert.equal(sanitizeName('My_App.v2/api:x'), '-y--pp-v2-api-x');
  assert.equal(sanitizeName('web\n  server evil 6.6.6.6:80'), 'web---server-evil-6-6-6-6-80');
});

test('reference example: one backend per (name, ServicePort), servers <Hostname>-<ID> at IP:Port, route on ServicePort', () => {
  const r = sidecarLayout(
    state([
      { host: 'web-01', id: '3a1f0c9d2b7e', ports: [{ Port: 31871, IP: '10.0.1.11' }] },
      { host: 'web-02', id: 'b81e44a07c10', ports: [{ Port: 32004, IP: '10.0.1.12' }], status: 4 },
    ]),
    opts,
  );
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backends, [
    {
      name: 'orders-10100',
      mode: 'http',
      servers: [
        { name: 'web-01-3a1f0c9d2b7e', host: '10.0.1.11', port: 31871 },
        { name: 'web-02-b81e44a07c10', host: '10.0.1.12', port: 32004, state: 'drain' },
      ],
      route: { port: 10100 },
      source: 'sidecar',
    },
  ]);
});

test('status table: Alive ready, Draining drain, Unhealthy/Unknown/Tombstone/unknown ints maint', () => {
  const statuses: [number, string | undefined][] = [
    [0, undefined],
    [4, 'drain'],
    [2, 'maint'],
    [3, 'maint'],
    [1, 'maint'],
    [9, 'maint'],
  ];
  const r = sidecarLayout(state(statuses.map(([status], i) => ({ host: `h${i}`, id: `id${i}`, status, updated: '2024-05-01T10:04:00Z' }))), opts);
  assert.deepEqual(
    r.backends[0]!.servers.map((s) => s.state),
    statuses.map(([, want]) => want),
  );
});

test('tombstones stay as maint for TOMBSTONE_KEEP_MS after their Updated (relative to LastChanged), then leave', () => {
  const keepMin = TOMBSTONE_KEEP_MS / 60_000;
  const insts: Inst[] = [
    { host: 'a', id: 'live' },
    { host: 'b', id: 'recent', status: 1, updated: '2024-05-01T10:00:00Z' },
    { host: 'c', id: 'old', status: 1, updated: '2024-05-01T09:00:00Z' },
    { host: 'd', id: 'unhealthy-old', status: 2, updated: '2024-05-01T09:00:00Z' },
  ];
  const names = (lc: string): string[] => sidecarLayout(state(insts, lc), opts).backends[0]!.servers.map((s) => s.name);
  assert.deepEqual(names('2024-05-01T10:05:00Z'), ['a-live', 'b-recent', 'd-unhealthy-old']);
  assert.deepEqual(names(`2024-05-01T10:${String(keepMin + 1).padStart(2, '0')}:00Z`), ['a-live', 'd-unhealthy-old']);
});

test('modes: http, tcp, ws → http, empty → http; unknown modes skipped naming the instance', () => {
  const r = sidecarLayout(
    state([
      { host: 'a', id: '1', name: 'h', mode: 'http', ports: [{ ServicePort: 1001 }] },
      { host: 'a', id: '2', name: 't', mode: 'tcp', ports: [{ ServicePort: 1002 }] },
      { host: 'a', id: '3', name: 'w', mode: 'ws', ports: [{ ServicePort: 1003 }] },
      { host: 'a', id: '4', name: 'e', mode: '', ports: [{ ServicePort: 1004 }] },
      { host: 'a', id: '5', name: 'u', mode: 'udp\nmode tcp', ports: [{ ServicePort: 1005 }] },
    ]),
    opts,
  );
  assert.deepEqual(
    r.backends.map((b) => `${b.name}:${b.mode}`),
    ['e-1004:http', 'h-1001:http', 't-1002:tcp', 'w-1003:http'],
  );
  assert.deepEqual(r.skipped, [{ key: 'Servers/a/Services/5', reason: 'Servers/a/Services/5: ProxyMode "udp\\nmode tcp" is not http, tcp or ws' }]);
});

test('only tcp ports with ServicePort != 0 are proxied; several ServicePorts give several backends', () => {
  const r = sidecarLayout(
    state([
      {
        host: 'a',
        id: '1',
        ports: [
          { ServicePort: 8080, Port: 30080 },
          { ServicePort: 8443, Port: 30443 },
          { ServicePort: 0, Port: 30000 },
          { Type: 'udp', ServicePort: 5353, Port: 35353 },
        ],
      },
      { host: 'b', id: '2', name: 'worker', ports: [{ ServicePort: 0 }] },
    ]),
    opts,
  );
  assert.deepEqual(
    r.backends.map((b) => [b.name, b.route?.port, b.servers.map((s) => s.port)]),
    [
      ['orders-8080', 8080, [30080]],
      ['orders-8443', 8443, [30443]],
    ],
  );
  assert.deepEqual(r.skipped, [], 'unexported instances are not "skipped"');
});

test('bind IP and use_hostnames; a port without IP falls back to the Hostname', () => {
  const insts: Inst[] = [
    { host: 'a', id: '1', hostname: 'web-01.example', ports: [{ IP: '10.0.0.1' }] },
    { host: 'b', id: '2', hostname: 'web-02.example', ports: [{ IP: '' }] },
  ];
  const plain = sidecarLayout(state(insts), { source: 'sidecar', bindIp: '192.168.168.168' });
  assert.deepEqual(plain.backends[0]!.route, { port: 10100, bindAddress: '192.168.168.168' });
  assert.deepEqual(plain.backends[0]!.servers.map((s) => s.host), ['10.0.0.1', 'web-02.example']);
  const named = sidecarLayout(state(insts), { source: 'sidecar', useHostnames: true });
  assert.deepEqual(named.backends[0]!.servers.map((s) => s.host), ['web-01.example', 'web-02.example']);
  assert.deepEqual(named.backends[0]!.route, { port: 10100 }, 'no bind IP: all addresses');
});

test('haproxy-api\'s mismatched-ports rule: instances whose sorted ServicePorts differ from the reference are skipped', () => {
  const r = sidecarLayout(
    state([
      { host: 'a', id: 'old', status: 1, updated: '2024-05-01T10:04:00Z', ports: [{ ServicePort: 9999 }] },
      { host: 'b', id: 'live1', ports: [{ ServicePort: 10100 }, { ServicePort: 10200 }] },
      { host: 'c', id: 'live2', ports: [{ ServicePort: 10200, Port: 1 }, { ServicePort: 10100, Port: 2 }] },
      { host: 'd', id: 'odd', ports: [{ ServicePort: 10100 }] },
    ]),
    opts,
  );
  assert.deepEqual(r.backends.map((b) => b.name), ['orders-10100', 'orders-10200']);
  assert.deepEqual(r.backends[0]!.servers.map((s) => s.name), ['b-live1', 'c-live2'], 'the Alive instance is the reference, not the tombstone');
  assert.deepEqual(r.skipped.map((s) => s.key), ['Servers/a/Services/old', 'Servers/d/Services/odd']);
  assert.match(r.skipped[1]!.reason, /ServicePorts \[10100\] but Servers\/b\/Services\/live1 has \[10100,10200\]/);
});

test('hostile values: names with newlines and directives, ports out of range, bad hosts; nothing unsafe comes out', () => {
  const evil = 'web\n  server evil 6.6.6.6:80 # x';
  const r = sidecarLayout(
    state([
      { host: 'a', id: '1', name: evil },
      { host: 'b', id: '2', name: 'big', ports: [{ ServicePort: 70000 }] },
      { host: 'c', id: '3', name: 'neg', ports: [{ ServicePort: -5 }] },
      { host: 'd', id: '4', name: 'hostport', ports: [{ ServicePort: 2000, Port: 0 }] },
      { host: 'e', id: '5', name: 'hostport', ports: [{ ServicePort: 2000, Port: 65536 }] },
      { host: 'f', id: '6', name: 'hostport', ports: [{ ServicePort: 2000, IP: '10.0.0.1 backup' }] },
      { host: 'g', id: '7\nserver x 1.1.1.1:1', name: 'hostport', ports: [{ ServicePort: 2000, IP: '10.0.0.7' }] },
      { host: 'h', id: '8', name: 'hostport', hostname: 'h\nx', ports: [{ ServicePort: 2000, IP: '' }] },
      { host: 'i', id: '9', name: 'x'.repeat(70), ports: [{ ServicePort: 3000 }] },
    ]),
    opts,
  );
  assert.deepEqual(
    r.backends.map((b) => [b.name, b.servers.map((s) => `${s.name}=${s.host}:${s.port}`)]),
    [
      ['hostport-2000', ['g-7_server_x_1.1.1.1_1=10.0.0.7:31000']],
      ['web---server-evil-6-6-6-6-80---x-10100', ['a-1=10.0.1.11:31000']],
    ],
  );
  const keys = r.skipped.map((s) => s.key).sort();
  assert.deepEqual(keys, ['Servers/b/Services/2', 'Servers/c/Services/3', 'Servers/d/Services/4', 'Servers/e/Services/5', 'Servers/f/Services/6', 'Servers/h/Services/8', 'Servers/i/Services/9']);
  const reasons = r.skipped.map((s) => s.reason).join('\n');
  assert.match(reasons, /port 70000: ServicePort: "70000" is not a port number/);
  assert.match(reasons, /Port: "65536" is not a port number/);
  assert.match(reasons, /IP: "10\.0\.0\.1 backup" is not an IP address or a DNS name/);
  assert.match(reasons, /Hostname: "h\\nx" is not an IP address or a DNS name/);
  for (const s of r.skipped) assert.ok(!s.reason.includes('\n'), `one line: ${s.reason}`);
  for (const b of r.backends) {
    for (const text of [b.name, ...b.servers.flatMap((s) => [s.name, s.host])]) assert.match(text, /^[A-Za-z0-9_.:-]+$/);
  }
});

test('conflicts: a ServicePort or a proxy name used twice is skipped for the later service, the first is served', () => {
  const r = sidecarLayout(
    state([
      { host: 'a', id: '1', name: 'alpha', ports: [{ ServicePort: 8080 }] },
      { host: 'a', id: '2', name: 'beta', ports: [{ ServicePort: 8080 }] },
      { host: 'a', id: '3', name: 'my_app', ports: [{ ServicePort: 9000 }] },
      { host: 'a', id: '4', name: 'my.app', ports: [{ ServicePort: 9000 }] },
      { host: 'a', id: '5', name: 'Orders', ports: [{ ServicePort: 7000 }] },
    ]),
    opts,
  );
  assert.deepEqual(r.backends.map((b) => b.name), ['rders-7000', 'alpha-8080', 'my-app-9000'], '"Orders" loses the leading dash haproxy-api would write');
  assert.deepEqual(
    r.skipped.map((s) => s.reason),
    [
      'Servers/a/Services/2: service "beta": ServicePort 8080 is already served by backend alpha-8080',
      'Servers/a/Services/3: service "my_app": ServicePort 9000 is already served by backend my-app-9000',
    ],
  );
});

test('duplicate server names after sanitising are skipped', () => {
  const r = sidecarLayout(
    state([
      { host: 'a', id: 'x y', hostname: 'web' },
      { host: 'b', id: 'x_y', hostname: 'web' },
    ]),
    opts,
  );
  assert.deepEqual(r.backends[0]!.servers.map((s) => s.name), ['web-x_y']);
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0]!.reason, /server name web-x_y is already used/);
});

test('structural sharing: an unchanged backend is the same object, a changed one is new', () => {
  const insts: Inst[] = [
    { host: 'a', id: '1', name: 'one', ports: [{ ServicePort: 1001 }] },
    { host: 'a', id: '2', name: 'two', ports: [{ ServicePort: 1002 }] },
  ];
  const first = sidecarLayout(state(insts), opts);
  const second = sidecarLayout(state([...insts, { host: 'b', id: '3', name: 'two', ports: [{ ServicePort: 1002 }] }], '2024-05-01T10:06:00Z'), {
    ...opts,
    previous: first.backends,
  });
  assert.equal(second.backends[0], first.backends[0], 'one-1001 unchanged: same object');
  assert.notEqual(second.backends[1], first.backends[1]);
  assert.equal(second.backends[1]!.servers.length, 2);
});

test('an empty state gives no backends', () => {
  assert.deepEqual(sidecarLayout(state([]), opts), { backends: [], skipped: [] });
});

test('an address with an IPv6 zone id is skipped alone, naming its record (fuzz regression)', () => {
  // Shrunk: Hostname "::%ffff:10.0.0.1" with no port IP; Node's isIP takes it, HAProxy "could not resolve address".
  const r = sidecarLayout(state([{ host: 'a', id: '00aa00', hostname: '::%ffff:10.0.0.1', ports: [{ IP: '' }] }, { host: 'b', id: '11bb11' }]), opts);
  assert.deepEqual(r.backends[0]!.servers.map((s) => s.name), ['b-11bb11']);
  assert.equal(r.skipped.length, 1);
  assert.match(r.skipped[0]!.reason, /^Servers\/a\/Services\/00aa00: .*"::%ffff:10\.0\.0\.1" is not an IP address or a DNS name/);
});
