/**
 * Fuzz: the key/value layouts. Seed 002's `containers` layout (src/state/kv-layout.ts) and seed
 * 001's confd layout (src/state/confd-layout.ts) as the etcd source and the key/value source
 * (KV_LAYOUT=confd) read it. See docs/fuzzing.md.
 */
import { test, before } from 'node:test';
import fc from 'fast-check';
import { kvLayout } from '../src/state/kv-layout.js';
import { confdLayout } from '../src/state/confd-layout.js';
import { dnsName, hostPort, hostile, label, name, port, urlPath } from './support/fuzz/arbitraries.js';
import { layoutFamily } from './support/fuzz/layout-family.js';
import { makePems, type Pems } from './support/fuzz/pem.js';
import { FUZZ_VALID_RUNS, fuzzSuite } from './support/fuzz/run.js';

const runFamily = fuzzSuite();
let pems: Pems;
before(() => {
  pems = makePems();
});

// ---------------------------------------------------------------------------------------------
// Seed 002: every key directly under the prefix is a `host:port` server of one backend.
// ---------------------------------------------------------------------------------------------

const KV_PREFIXES = ['apps/myapp/containers', 'apps/web/containers', 'services', '/a/b/', 'apps/stats/containers'];

interface KvValue {
  prefix: string;
  entries: [string, string][];
  other: [string, string][];
}

function kvKeys(v: KvValue): Record<string, string> {
  const base = `/${v.prefix.replace(/^\/+|\/+$/g, '')}`;
  const keys: Record<string, string> = {};
  for (const [child, value] of v.entries) keys[`${base}/${child}`] = value;
  for (const [k, value] of v.other) keys[k.startsWith('/') ? k : `${base}/${k}/deeper`] = value;
  return keys;
}

const serverKey = fc.oneof(name, label, fc.stringMatching(/^[a-z0-9-]{1,12}$/));

const kvHostile: fc.Arbitrary<KvValue> = fc.record({
  prefix: fc.constantFrom(...KV_PREFIXES),
  entries: fc.array(fc.tuple(hostile(serverKey), hostile(hostPort)), { maxLength: 8 }),
  other: fc.array(fc.tuple(hostile(fc.constantFrom('/other/x', 'nested', '/apps/myapp/containers')), hostile(hostPort)), { maxLength: 2 }),
});

const kvValid: fc.Arbitrary<KvValue> = fc.record({
  prefix: fc.constantFrom(...KV_PREFIXES.filter((p) => !p.includes('stats'))),
  entries: fc.uniqueArray(fc.tuple(fc.stringMatching(/^[a-z0-9][a-z0-9_.-]{0,20}$/), hostPort), { maxLength: 8, selector: ([k]) => k }),
  other: fc.constant([]),
});

const kvFamily = (n: string, arbitrary: fc.Arbitrary<KvValue>, allAccepted: boolean) =>
  layoutFamily<KvValue>({
    name: n,
    arbitrary,
    source: 'kv',
    keys: kvKeys,
    layout: (v) => kvLayout(kvKeys(v), { prefix: v.prefix, source: 'kv' }),
    allAccepted,
    batchSize: 200,
  });

test('fuzz: key/value containers layout (seed 002), hostile values', (t) => runFamily(t, kvFamily('kv', kvHostile, false)));
test('fuzz: key/value containers layout (seed 002), valid values are all kept', (t) => runFamily(t, kvFamily('kv valid', kvValid, true), FUZZ_VALID_RUNS));

// ---------------------------------------------------------------------------------------------
// Seed 001: services/<name>/{port,domain,url_beg}, tcp-services/<name>/{external,internal}_port, certs/<name>.
// ---------------------------------------------------------------------------------------------

interface ConfdValue {
  services: { name: string; fields: [string, string][] }[];
  tcp: { name: string; fields: [string, string][] }[];
  certs: [string, string][];
  other: [string, string][];
}

const portText = port.map(String);
const svcName = fc.oneof(label, name, fc.constantFrom('web', 'api', 'srv1', 'stats', 'fe_http'));

function confdKeys(base: string, v: ConfdValue): Record<string, string> {
  const keys: Record<string, string> = {};
  for (const s of v.services) for (const [f, value] of s.fields) keys[`${base}/services/${s.name}/${f}`] = value;
  for (const s of v.tcp) for (const [f, value] of s.fields) keys[`${base}/tcp-services/${s.name}/${f}`] = value;
  for (const [n, pem] of v.certs) keys[`${base}/certs/${n}`] = pem;
  for (const [k, value] of v.other) keys[`${base}/${k}`] = value;
  return keys;
}

function confdArbitraries(p: Pems) {
  const field = (f: string, value: fc.Arbitrary<string>): fc.Arbitrary<[string, string][]> =>
    fc.option(fc.tuple(fc.constant(f), value), { freq: 3 }).map((x) => (x === null ? [] : [x]));
  const hostileService = fc.record({
    name: hostile(svcName),
    fields: fc
      .tuple(
        fc.oneof({ weight: 8, arbitrary: fc.tuple(fc.constant('port'), hostile(portText)).map((x) => [x]) }, { weight: 1, arbitrary: fc.constant([]) }),
        field('domain', hostile(dnsName)),
        field('url_beg', hostile(urlPath)),
        fc.oneof({ weight: 6, arbitrary: fc.constant([]) }, { weight: 1, arbitrary: fc.tuple(hostile(fc.constantFrom('weight', 'port/x', 'domain ')), hostile(portText)).map((x) => [x]) }),
      )
      .map((parts) => parts.flat() as [string, string][]),
  });
  const hostileTcp = fc.record({
    name: hostile(svcName),
    fields: fc
      .tuple(field('external_port', hostile(portText)), field('internal_port', hostile(portText)))
      .map((parts) => parts.flat() as [string, string][]),
  });
  const pemValue = fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...p.good) }, { weight: 2, arbitrary: fc.constantFrom(...p.bad) }, { weight: 1, arbitrary: hostile(fc.constantFrom(...p.good)) });
  const hostileValue: fc.Arbitrary<ConfdValue> = fc.record({
    services: fc.array(hostileService, { maxLength: 4 }),
    tcp: fc.array(hostileTcp, { maxLength: 3 }),
    certs: fc.array(fc.tuple(hostile(fc.oneof(name, dnsName)), pemValue), { maxLength: 2 }),
    other: fc.array(fc.tuple(hostile(fc.constantFrom('services', 'services/x', 'certs/a/b', 'tcp-services/y/z/w')), hostile(portText)), { maxLength: 1 }),
  });
  const validName = fc.stringMatching(/^[a-z][a-z0-9-]{0,14}[a-z0-9]$/).filter((n) => !['stats', 'fe_http', 'fe_default'].includes(n) && !n.startsWith('tcp-'));
  const validValue: fc.Arbitrary<ConfdValue> = fc
    .record({
      services: fc.uniqueArray(
        fc.record({ name: validName, port: portText, domain: fc.option(dnsName), url_beg: fc.option(urlPath) }),
        { maxLength: 4, selector: (s) => s.name },
      ),
      tcp: fc.uniqueArray(fc.record({ name: validName, ext: fc.integer({ min: 10000, max: 60000 }), int: portText }), { maxLength: 3, selector: (s) => s.ext }),
      certs: fc.uniqueArray(fc.tuple(fc.oneof(validName, dnsName.filter((d) => /^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$/.test(d))), fc.constantFrom(...p.good)), { maxLength: 2, selector: ([n]) => n }),
    })
    .map((v) => ({
      services: v.services.map((s) => ({
        name: s.name,
        fields: [['port', s.port], ...(s.domain === null ? [] : [['domain', s.domain]]), ...(s.url_beg === null ? [] : [['url_beg', s.url_beg]])] as [string, string][],
      })),
      tcp: v.tcp.map((s) => ({ name: s.name, fields: [['external_port', String(s.ext)], ['internal_port', s.int]] as [string, string][] })),
      certs: v.certs,
      other: [],
    }));
  return { hostileValue, validValue };
}

/**
 * The etcd source reads `/haproxy-<id>`; the key/value source (KV_LAYOUT=confd) reads KV_PREFIX,
 * given without its leading '/' and often with a trailing one. Each value goes through one of them.
 */
const SOURCES = [
  { source: 'etcd', prefix: '/haproxy-lb1' },
  { source: 'kv', prefix: 'haproxy-lb1/' },
] as const;

const confdFamily = (n: string, arbitrary: fc.Arbitrary<ConfdValue>, allAccepted: boolean) =>
  layoutFamily<{ value: ConfdValue; via: number }>({
    name: n,
    arbitrary: fc.record({ value: arbitrary, via: fc.integer({ min: 0, max: SOURCES.length - 1 }) }),
    source: 'confd',
    keys: ({ value }) => confdKeys('/haproxy-lb1', value),
    layout: ({ value, via }) => confdLayout(confdKeys('/haproxy-lb1', value), { prefix: SOURCES[via]!.prefix, source: SOURCES[via]!.source }),
    allAccepted,
    batchSize: 150,
  });

test('fuzz: confd layout (seed 001) through etcd and the key/value source, hostile values', (t) => runFamily(t, confdFamily('confd', confdArbitraries(pems).hostileValue, false)));
test('fuzz: confd layout (seed 001), valid values are all kept', (t) => runFamily(t, confdFamily('confd valid', confdArbitraries(pems).validValue, true), FUZZ_VALID_RUNS));
