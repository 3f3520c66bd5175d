import { test } from 'node:test';
import assert from 'node:assert/strict';
import { layoutService, parseService, proxymgrLayout, watchTargetOf, type ServiceNode, type WatcherData } from './proxymgr-layout.js';
import { serverName } from './znode.js';

const P = '/service_config';
const opts = { source: 'zookeeper' };
const blob = (o: Record<string, unknown>): string => JSON.stringify(o);
const zkChildren = (entries: Record<string, unknown>): WatcherData => ({
  children: Object.fromEntries(Object.entries(entries).map(([k, v]) => [k, { data: typeof v === 'string' ? v : JSON.stringify(v) }])),
});
const seed004 = blob({ type: 'zookeeper', server: 'localhost:2181', path: '/services/testservice', port: 8080, listen_options: ['mode http'], server_options: ['check inter 2000'] });

test("seed 004's README blob and server nodes become one listen section", () => {
  const r = proxymgrLayout(
    [{ parent: P, name: 'testservice', data: seed004, watcher: zkChildren({ a: { address: '1.2.3.4', port: 8080 }, b: { address: '1.2.3.5', port: 8080 } }) }],
    opts,
  );
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backends, [
    {
      name: 'testservice',
      mode: 'http',
      route: { port: 8080 },
      source: 'zookeeper',
      servers: [
        { name: '1.2.3.4:8080', host: '1.2.3.4', port: 8080 },
        { name: '1.2.3.5:8080', host: '1.2.3.5', port: 8080 },
      ],
      options: [],
      serverOptions: ['check', 'inter', '2000'],
    },
  ]);
});

test('mode is tcp unless listen_options say http (ProxyMgr rendered no mode line)', () => {
  const spec = parseService('db', blob({ type: 'zookeeper', path: '/s/db', port: 5432 }));
  assert.equal(spec.mode, 'tcp');
  assert.deepEqual(spec.target, { type: 'zookeeper', path: '/s/db' }, 'no server: the service_config ensemble');
  const http = parseService('web', blob({ type: 'zookeeper', path: '/s/web', port: 80, listen_options: ['mode http', 'balance leastconn', 'option httpchk GET /health'] }));
  assert.equal(http.mode, 'http');
  assert.deepEqual(http.options, ['balance leastconn', 'option httpchk GET /health']);
});

test('watcher targets: zookeeper on its own ensemble, campanjazk, file, dns', () => {
  assert.deepEqual(watchTargetOf('a', blob({ type: 'zookeeper', server: 'zk1:2181, zk2', path: '/x', port: 1 })), { type: 'zookeeper', servers: 'zk1:2181,zk2:2181', path: '/x' });
  assert.deepEqual(watchTargetOf('a', blob({ type: 'campanjazk', path: '/hosts', port: 1 })), { type: 'campanjazk', path: '/hosts' });
  assert.deepEqual(watchTargetOf('a', blob({ type: 'file', file: '/etc/app/servers', port: 1 })), { type: 'file', file: '/etc/app/servers' });
  assert.deepEqual(watchTargetOf('a', blob({ type: 'dns', backends: [{ name: 'a.example', port: 80 }], port: 1 })), { type: 'dns' });
  assert.equal(watchTargetOf('a', 'not json'), undefined);
  assert.equal(watchTargetOf('a b', seed004), undefined);
});

test('campanjazk: child names are hosts, remote_port else port', () => {
  const node = (extra: Record<string, unknown>): ServiceNode => ({
    parent: P,
    name: 'c',
    data: blob({ type: 'campanjazk', path: '/hosts', port: 9000, ...extra }),
    watcher: { children: { 'web1.internal': {}, '10.0.0.7': {}, 'bad host': {} } },
  });
  const withRemote = layoutService(node({ remote_port: 8080 }), opts);
  assert.deepEqual(withRemote.backend!.servers.map((s) => s.name), ['10.0.0.7:8080', 'web1.internal:8080']);
  assert.deepEqual(withRemote.skipped.map((s) => s.key), ['/hosts/"bad host"']);
  assert.deepEqual(layoutService(node({}), opts).backend!.servers.map((s) => s.port), [9000, 9000]);
});

test('dns: names go to the model dns list (resolved by HAProxy), IPs are plain servers', () => {
  const r = layoutService(
    { parent: P, name: 'd', data: blob({ type: 'dns', port: 7000, backends: [{ name: 'api.example.com', port: 80 }, { name: '10.1.1.1', port: 81 }, { name: 'x.example.', port: 82, slots: 2 }] }) },
    opts,
  );
  assert.deepEqual(r.skipped, []);
  assert.deepEqual(r.backend!.dns, [
    { name: 'api.example.com', port: 80, slots: 8 },
    { name: 'x.example', port: 82, slots: 2 },
  ]);
  assert.deepEqual(r.backend!.servers, [{ name: '10.1.1.1:81', host: '10.1.1.1', port: 81 }]);
});

test('file: one host:port per line; bad lines skipped by line number without echoing the content', () => {
  const node: ServiceNode = {
    parent: P,
    name: 'f',
    data: blob({ type: 'file', file: '/srv/list', port: 7001 }),
    watcher: { file: { content: '10.0.0.1:80\n\n# comment\n  web:8080  \nroot:x:0:0:secret\n10.0.0.1:80\n' } },
  };
  const r = layoutService(node, opts);
  assert.deepEqual(r.backend!.servers.map((s) => s.name), ['10.0.0.1:80', 'web:8080']);
  assert.deepEqual(r.skipped.map((s) => s.key), ['/srv/list:5', '/srv/list:6']);
  assert.ok(!r.skipped.some((s) => s.reason.includes('secret')));
  const unreadable = layoutService({ ...node, watcher: { file: { error: 'ENOENT' } } }, opts);
  assert.equal(unreadable.backend, undefined);
  assert.match(unreadable.skipped[0]!.reason, /^\/service_config\/f: file \/srv\/list cannot be read \(ENOENT\); service skipped$/);
});

test('bad server nodes are skipped alone, naming the node', () => {
  const r = layoutService(
    {
      parent: P,
      name: 'web',
      data: seed004,
      watcher: {
        children: {
          good: { data: blob({ address: '10.0.0.1', port: 80 }) },
          nojson: { data: '{address' },
          noport: { data: blob({ address: '10.0.0.2' }) },
          bigport: { data: blob({ address: '10.0.0.2', port: 70000 }) },
          inject: { data: blob({ address: '10.0.0.3\n  server evil 6.6.6.6', port: 80 }) },
          spaces: { data: blob({ address: '10.0.0.3 backup', port: 80 }) },
          array: { data: '[1]' },
          zdup: { data: blob({ address: '10.0.0.1', port: 80 }) },
          noauth: { error: 'NO_AUTH' },
          huge: { data: blob({ address: '10.0.0.9', port: 80, pad: 'x'.repeat(5000) }) },
        },
      },
    },
    opts,
  );
  assert.deepEqual(r.backend!.servers, [{ name: '10.0.0.1:80', host: '10.0.0.1', port: 80 }]);
  assert.deepEqual(r.skipped.map((s) => s.key).sort(), ['array', 'bigport', 'huge', 'inject', 'noauth', 'nojson', 'noport', 'spaces', 'zdup'].map((n) => `/services/testservice/${n}`));
  for (const s of r.skipped) {
    assert.ok(s.reason.startsWith(`${s.key}: `), s.reason);
    assert.ok(!s.reason.includes('\n'), s.reason);
  }
  assert.match(r.skipped.find((s) => s.key.endsWith('/zdup'))!.reason, /already listed by \/services\/testservice\/good/);
});

test('hostile services are skipped whole with a reason naming the node; others apply', () => {
  const good: ServiceNode = { parent: P, name: 'good', data: blob({ type: 'zookeeper', path: '/s/good', port: 9001 }), watcher: { children: {} } };
  const hostile: Record<string, ServiceNode> = {
    newline: { parent: P, name: 'evil\nlisten x', data: seed004 },
    spaces: { parent: P, name: 'a b', data: seed004 },
    directive: { parent: P, name: 'x\n  server evil 6.6.6.6:80', data: seed004.replace('8080', '9002') },
    huge: { parent: P, name: 'h'.repeat(5000), data: seed004 },
    badjson: { parent: P, name: 'badjson', data: '{"type": "zookeeper",' },
    notobject: { parent: P, name: 'notobject', data: '"x"' },
    notype: { parent: P, name: 'notype', data: blob({ path: '/a', port: 1 }) },
    badtype: { parent: P, name: 'badtype', data: blob({ type: 'consul', path: '/a', port: 1 }) },
    noport: { parent: P, name: 'noport', data: blob({ type: 'zookeeper', path: '/a' }) },
    badport: { parent: P, name: 'badport', data: blob({ type: 'zookeeper', path: '/a', port: 65536 }) },
    floatport: { parent: P, name: 'floatport', data: blob({ type: 'zookeeper', path: '/a', port: 80.5 }) },
    badoption: { parent: P, name: 'badoption', data: blob({ type: 'zookeeper', path: '/a', port: 2, listen_options: ['mode http', 'server evil 6.6.6.6:80'] }) },
    injectoption: { parent: P, name: 'injectoption', data: blob({ type: 'zookeeper', path: '/a', port: 3, listen_options: ['balance roundrobin\nlisten evil'] }) },
    badserveropt: { parent: P, name: 'badserveropt', data: blob({ type: 'zookeeper', path: '/a', port: 4, server_options: ['check\nserver x 1.1.1.1:1'] }) },
    badpath: { parent: P, name: 'badpath', data: blob({ type: 'zookeeper', path: 'relative', port: 5 }) },
    nopath: { parent: P, name: 'nopath', data: blob({ type: 'zookeeper', port: 6 }) },
    badserver: { parent: P, name: 'badserver', data: blob({ type: 'zookeeper', server: 'zk:2181/chroot', path: '/a', port: 7 }) },
    bigblob: { parent: P, name: 'bigblob', data: blob({ type: 'zookeeper', path: '/a', port: 8, pad: 'x'.repeat(70_000) }) },
    unreadable: { parent: P, name: 'unreadable', error: 'NO_AUTH' },
    badfile: { parent: P, name: 'badfile', data: blob({ type: 'file', file: '/etc/../shadow', port: 10 }) },
    emptydns: { parent: P, name: 'emptydns', data: blob({ type: 'dns', backends: [], port: 11 }) },
    watcherdenied: { parent: P, name: 'watcherdenied', data: blob({ type: 'zookeeper', path: '/a', port: 12 }), watcher: { error: 'NO_AUTH' } },
  };
  const r = proxymgrLayout([good, ...Object.values(hostile)], opts);
  assert.deepEqual(r.backends.map((b) => b.name), ['good']);
  assert.equal(r.skipped.length, Object.keys(hostile).length);
  for (const s of r.skipped) {
    assert.ok(s.key.startsWith(`${P}/`), s.key);
    assert.ok(s.reason.startsWith(`${s.key}: `), s.reason);
    assert.ok(s.reason.endsWith('service skipped'), s.reason);
    assert.ok(!/[\n\r]/.test(s.key + s.reason), 'one line');
    assert.ok(s.reason.length < 400, `short: ${s.reason.length}`);
  }
  assert.ok(r.skipped.some((s) => s.key === `${P}/"evil\\nlisten x"`));
  assert.ok(r.skipped.some((s) => /listen_options\[1\]/.test(s.reason)));
});

test('no value from the store reaches a backend unless it passed a grammar', () => {
  // Every string in the output: names, hosts, options — none can carry whitespace other than
  // single spaces inside options, nor control characters.
  const r = proxymgrLayout(
    [{ parent: P, name: 'web', data: seed004, watcher: zkChildren({ a: { address: 'web-1.example', port: 80 } }) }],
    opts,
  );
  const strings: string[] = [];
  const walk = (v: unknown): void => {
    if (typeof v === 'string') strings.push(v);
    else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(r.backends);
  for (const s of strings) assert.match(s, /^[\x21-\x7e]+(?: [\x21-\x7e]+)*$/);
});

test('a service whose watcher data is not read yet is left out, without a skip', () => {
  const r = proxymgrLayout([{ parent: P, name: 'later', data: seed004 }], opts);
  assert.deepEqual(r, { backends: [], skipped: [] });
});

test('a missing watcher path gives an empty backend (servers may come later)', () => {
  const r = proxymgrLayout([{ parent: P, name: 'web', data: seed004, watcher: { children: {} } }], opts);
  assert.deepEqual(r.backends[0]!.servers, []);
});

test('two services on one port: the first by name keeps it', () => {
  const svc = (name: string): ServiceNode => ({ parent: P, name, data: blob({ type: 'zookeeper', path: `/s/${name}`, port: 8000 }), watcher: { children: {} } });
  const r = proxymgrLayout([svc('zeta'), svc('alpha')], opts);
  assert.deepEqual(r.backends.map((b) => b.name), ['alpha']);
  assert.match(r.skipped[0]!.reason, /^\/service_config\/zeta: port 8000 is already bound by service alpha/);
});

test('server names: ProxyMgr address:port, shortened with a hash past 63 characters', () => {
  assert.equal(serverName('10.0.0.1', 80), '10.0.0.1:80');
  assert.equal(serverName('::1', 80), '0::1:80');
  const long = `${'a'.repeat(60)}.example.com`;
  const n = serverName(long, 8080);
  assert.ok(n.length <= 63 && n.endsWith(':8080'), n);
  assert.notEqual(n, serverName(`${'a'.repeat(60)}.example.org`, 8080));
});
