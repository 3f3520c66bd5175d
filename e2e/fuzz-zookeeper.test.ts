/**
 * Fuzz: the ZooKeeper source's ProxyMgr layout (src/sources/zookeeper/proxymgr-layout.ts and the
 * allow-lists of options.ts): node names, service blobs, listen_options, server_options and the
 * watchers' server data. See docs/fuzzing.md.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { proxymgrLayout, type ServiceNode, type WatcherData } from '../src/sources/zookeeper/proxymgr-layout.js';
import { anyJson, dnsName, host, hostPort, hostile, hostileJson, ip, label, name, port, urlPath } from './support/fuzz/arbitraries.js';
import { layoutFamily } from './support/fuzz/layout-family.js';
import { FUZZ_VALID_RUNS, fuzzSuite } from './support/fuzz/run.js';

const runFamily = fuzzSuite();

const P = '/service_config';
const h = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => hostile(valid, 30);

// ---------------------------------------------------------------------------------------------
// listen_options and server_options: lines of the allow-list with generated arguments.
// ---------------------------------------------------------------------------------------------

const time = fc.oneof(fc.integer({ min: 0, max: 100_000 }).map(String), fc.tuple(fc.integer({ min: 0, max: 10_000 }), fc.constantFrom('us', 'ms', 's', 'm', 'h', 'd')).map(([n, u]) => `${n}${u}`));
const int = (min: number, max: number): fc.Arbitrary<string> => fc.oneof(fc.integer({ min, max }).map(String), fc.constantFrom(String(min), String(max)));
const headerName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,15}$/);
const headerValue = fc.stringMatching(/^[A-Za-z0-9._:/-]{1,20}$/);

const listenLine: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('mode http', 'mode tcp'),
  fc.constantFrom('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random', 'uri').map((a) => `balance ${a}`),
  fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/).map((p) => `balance url_param ${p}`),
  headerName.map((n) => `balance hdr(${n})`),
  fc.constantFrom('httplog', 'tcplog', 'dontlognull', 'log-health-checks', 'redispatch', 'abortonclose', 'allbackups', 'http-server-close', 'httpclose', 'http-keep-alive', 'tcpka', 'clitcpka', 'srvtcpka', 'tcp-check', 'ssl-hello-chk', 'persist', 'forwardfor', 'forwardfor if-none').map((o) => `option ${o}`),
  fc.oneof(fc.constant('option httpchk'), urlPath.map((u) => `option httpchk ${u}`), fc.tuple(fc.constantFrom('GET', 'HEAD', 'OPTIONS', 'POST', 'PUT'), urlPath, fc.constantFrom('', ' HTTP/1.0', ' HTTP/1.1')).map(([m, u, v]) => `option httpchk ${m} ${u}${v}`)),
  fc.tuple(fc.constantFrom('connect', 'client', 'server', 'queue', 'check', 'tunnel', 'http-request', 'http-keep-alive', 'client-fin', 'server-fin'), time).map(([w, t]) => `timeout ${w} ${t}`),
  int(1, 10_000_000).map((n) => `maxconn ${n}`),
  int(1, 10_000_000).map((n) => `fullconn ${n}`),
  int(0, 100).map((n) => `retries ${n}`),
  fc.tuple(fc.constantFrom('map-based', 'consistent'), fc.constantFrom('', ' sdbm', ' djb2', ' wt6', ' crc32', ' sdbm avalanche')).map(([m, f]) => `hash-type ${m}${f}`),
  fc.constantFrom('http-check disable-on-404', 'http-check send-state'),
  fc.oneof(fc.integer({ min: 100, max: 599 }).map((c) => `http-check expect status ${c}`), headerValue.map((v) => `http-check expect ! string ${v}`), headerValue.map((v) => `http-check expect string ${v}`)),
  fc.tuple(fc.option(fc.constantFrom('GET', 'HEAD')), fc.option(urlPath), fc.option(fc.constantFrom('HTTP/1.0', 'HTTP/1.1')), fc.option(fc.tuple(headerName, headerValue)))
    .filter(([m, u, v, hd]) => m !== null || u !== null || v !== null || hd !== null)
    .map(([m, u, v, hd]) => ['http-check send', m && `meth ${m}`, u && `uri ${u}`, v && `ver ${v}`, hd && `hdr ${hd[0]} ${hd[1]}`].filter(Boolean).join(' ')),
);

const serverOption: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('check', 'backup', 'ssl', 'check-ssl', 'no-check-ssl', 'send-proxy', 'send-proxy-v2', 'check-send-proxy', 'agent-check', 'non-stick', 'no-send-proxy', 'no-ssl', 'tfo', 'allow-0rtt'),
  fc.tuple(fc.constantFrom('inter', 'fastinter', 'downinter', 'slowstart', 'agent-inter', 'pool-purge-delay'), time).map(([k, t]) => `${k} ${t}`),
  fc.tuple(fc.constantFrom('rise', 'fall', 'error-limit'), int(1, 1000)).map(([k, n]) => `${k} ${n}`),
  int(0, 256).map((n) => `weight ${n}`),
  fc.tuple(fc.constantFrom('maxconn', 'maxqueue', 'minconn', 'pool-max-conn'), int(0, 10_000_000)).map(([k, n]) => `${k} ${n}`),
  fc.tuple(fc.constantFrom('port', 'agent-port'), int(1, 65535)).map(([k, n]) => `${k} ${n}`),
  fc.constantFrom('verify none', 'verify required', 'observe layer4', 'observe layer7', 'on-error fastinter', 'on-error fail-check', 'on-error sudden-death', 'on-error mark-down', 'on-marked-down shutdown-sessions', 'on-marked-up shutdown-backup-sessions', 'ssl-min-ver TLSv1.2', 'ssl-max-ver TLSv1.3', 'proto h1', 'proto h2', 'ca-file @system-ca', 'sni req.hdr(host)'),
  dnsName.map((d) => `check-sni ${d.replace(/\.$/, '')}`),
  dnsName.map((d) => `sni str(${d.replace(/\.$/, '')})`),
  fc.constantFrom('h2', 'http/1.1', 'h2,http/1.1').map((a) => `alpn ${a}`),
  fc.constantFrom('h2', 'http/1.1', 'h2,http/1.1').map((a) => `check-alpn ${a}`),
  fc.constantFrom('last', 'libc', 'none', 'last,libc,none', 'libc,none').map((a) => `init-addr ${a}`),
);

// ---------------------------------------------------------------------------------------------
// Service blobs and watcher data
// ---------------------------------------------------------------------------------------------

const jsonPort = (p: fc.Arbitrary<number>): fc.Arbitrary<unknown> => hostileJson(fc.oneof({ weight: 4, arbitrary: p }, { weight: 1, arbitrary: p.map(String) }));
const listenPort = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 1024, max: 65535 }) }, { weight: 1, arbitrary: fc.constantFrom(80, 443, 1936, 5000, 7778, 1, 65535) });

const common = {
  port: jsonPort(listenPort),
  listen_options: fc.oneof({ weight: 8, arbitrary: fc.array(h(listenLine), { maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
  server_options: fc.oneof({ weight: 8, arbitrary: fc.array(h(serverOption), { maxLength: 4 }) }, { weight: 1, arbitrary: anyJson }),
};
const zkPath = fc.oneof(fc.array(label, { minLength: 1, maxLength: 3 }).map((ls) => `/${ls.join('/')}`), fc.constant('/'));
const blobOf = fc.oneof(
  fc.record({ type: h(fc.constantFrom('zookeeper')), path: hostileJson(h(zkPath)), server: fc.option(h(fc.constantFrom('zk1:2181', 'zk1,zk2:2182', '127.0.0.1:2181')), { nil: undefined }), ...common }, { requiredKeys: ['type', 'path', 'port'] }),
  fc.record({ type: fc.constant('campanjazk'), path: h(zkPath), remote_port: jsonPort(port), ...common }, { requiredKeys: ['type', 'path', 'port'] }),
  fc.record({ type: fc.constant('file'), file: h(fc.constantFrom('/etc/app/servers', '/var/lib/x.txt')), ...common }, { requiredKeys: ['type', 'file', 'port'] }),
  fc.record({ type: fc.constant('dns'), backends: fc.oneof({ weight: 8, arbitrary: fc.array(fc.record({ name: hostileJson(h(host)), port: jsonPort(port), slots: hostileJson(fc.integer({ min: 1, max: 64 })) }, { requiredKeys: ['name', 'port'] }), { minLength: 1, maxLength: 3 }) }, { weight: 1, arbitrary: anyJson }), ...common }, { requiredKeys: ['type', 'backends', 'port'] }),
);

const serverNode = fc.oneof(
  { weight: 8, arbitrary: fc.record({ address: hostileJson(h(host)), port: jsonPort(port) }, { requiredKeys: ['address', 'port'] }).map((o) => JSON.stringify(o)) },
  { weight: 1, arbitrary: h(fc.constantFrom('{"address":"10.0.0.1","port":80}', 'not json', '[]', '{}', 'null')) },
);

// Built once: making an arbitrary (stringMatching above all) costs far more than drawing from it.
const WATCHERS: Record<string, fc.Arbitrary<WatcherData | undefined>> = {
  zookeeper: fc.oneof(
    { weight: 10, arbitrary: fc.dictionary(h(fc.oneof(label, fc.stringMatching(/^[a-z0-9_-]{1,10}$/))), fc.oneof({ weight: 10, arbitrary: serverNode.map((data) => ({ data })) }, { weight: 1, arbitrary: fc.constant({ error: 'NO_NODE' }) }), { maxKeys: 5 }).map((children) => ({ children })) },
    { weight: 1, arbitrary: fc.constantFrom<WatcherData | undefined>({ error: 'NO_AUTH' }, undefined, { children: {} }) },
  ),
  campanjazk: fc.dictionary(h(host), fc.constant({}), { maxKeys: 5 }).map((children) => ({ children })),
  file: fc.oneof(
    { weight: 10, arbitrary: fc.array(fc.oneof(h(hostPort), fc.constantFrom('', '# comment', '  ')), { maxLength: 6 }).map((lines) => ({ file: { content: lines.join('\n') } })) },
    { weight: 1, arbitrary: fc.constant({ file: { error: 'ENOENT' } }) },
  ),
};
const NO_WATCHER = fc.constant(undefined);
const watcherFor = (blob: Record<string, unknown>): fc.Arbitrary<WatcherData | undefined> => (typeof blob.type === 'string' && Object.hasOwn(WATCHERS, blob.type) ? WATCHERS[blob.type] : undefined) ?? NO_WATCHER;

const node: fc.Arbitrary<ServiceNode> = fc.oneof(
  {
    weight: 12,
    arbitrary: fc
      .tuple(h(fc.oneof(name, fc.constantFrom('testservice', 'web', 'stats'))), blobOf)
      .chain(([n, blob]) => watcherFor(blob as Record<string, unknown>).map((w): ServiceNode => ({ parent: P, name: n, data: JSON.stringify(blob), ...(w === undefined ? {} : { watcher: w }) }))),
  },
  { weight: 1, arbitrary: fc.tuple(h(name), h(fc.constantFrom('{', '[]', '{"type":"zookeeper"}', 'null', '"x"'))).map(([n, data]): ServiceNode => ({ parent: P, name: n, data })) },
  { weight: 1, arbitrary: h(name).map((n): ServiceNode => ({ parent: P, name: n, error: 'NO_AUTH' })) },
);

const zkFamily = (n: string, arbitrary: fc.Arbitrary<ServiceNode[]>, allAccepted: boolean) =>
  layoutFamily<ServiceNode[]>({
    name: n,
    arbitrary,
    source: 'zookeeper',
    layout: (nodes) => proxymgrLayout(nodes, { source: 'zookeeper' }),
    allAccepted,
    batchSize: 200,
  });

// Valid: safe options, unique names and ports, servers of valid addresses.
const validNodes: fc.Arbitrary<ServiceNode[]> = fc
  .uniqueArray(
    fc.record({
      name: fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/).filter((x) => !['stats', 'fe_http', 'fe_default'].includes(x)),
      port: fc.integer({ min: 10000, max: 60000 }),
      mode: fc.constantFrom('http', 'tcp'),
      options: fc.subarray(['balance leastconn', 'timeout server 30s', 'timeout connect 5s', 'retries 3', 'option redispatch']),
      serverOptions: fc.subarray(['check', 'inter 2000', 'rise 2', 'fall 3', 'weight 10', 'maxconn 100', 'backup', 'send-proxy']),
      servers: fc.uniqueArray(fc.tuple(ip, port), { maxLength: 4, selector: ([a, p]) => `${a}:${p}` }),
    }),
    { maxLength: 3, selector: (s) => s.name },
  )
  .map((services) => {
    const ports = new Set<number>();
    return services
      .filter((s) => !ports.has(s.port) && Boolean(ports.add(s.port)))
      .map((s): ServiceNode => ({
        parent: P,
        name: s.name,
        data: JSON.stringify({ type: 'zookeeper', path: `/services/${s.name}`, port: s.port, listen_options: [`mode ${s.mode}`, ...s.options], server_options: s.serverOptions }),
        watcher: { children: Object.fromEntries(s.servers.map(([a, p], i) => [`n${i}`, { data: JSON.stringify({ address: a, port: p }) }])) },
      }));
  });

test('fuzz: ZooKeeper ProxyMgr layout, hostile nodes, blobs, options and server data', (t) => runFamily(t, zkFamily('zookeeper', fc.array(node, { minLength: 1, maxLength: 3 }), false)));
test('fuzz: ZooKeeper ProxyMgr layout, valid services are all kept', (t) => runFamily(t, zkFamily('zookeeper valid', validNodes, true), FUZZ_VALID_RUNS));
