/**
 * Fuzz: the discovery file's layout (src/sources/file/layout.ts), over parsed documents (yaml
 * and json parse to the same values). See docs/fuzzing.md.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { fileLayout, flattenKeys } from '../src/sources/file/layout.js';
import { toName } from '../src/state/validate.js';
import { anyJson, dnsName, hostPort, hostile, hostileJson, name, port, urlPath } from './support/fuzz/arbitraries.js';
import { layoutFamily } from './support/fuzz/layout-family.js';
import { FUZZ_VALID_RUNS, fuzzSuite } from './support/fuzz/run.js';

const runFamily = fuzzSuite();

const optional = { requiredKeys: [] as never[] };
// Fields are mostly valid so services are often accepted as a whole; the rest is hostile.
const h = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => hostile(valid, 40);
const hj = (valid: fc.Arbitrary<string>): fc.Arbitrary<unknown> => hostileJson(h(valid));

const serverObject = fc.record(
  {
    address: hj(hostPort),
    name: hj(fc.oneof(name, fc.constantFrom('srv1', 'srv2', 'srv10', 'srv2_1', '10.0.0.1:80'))),
    weight: hostileJson(fc.integer({ min: 0, max: 256 })),
    state: hostileJson(fc.constantFrom('ready', 'drain', 'maint')),
  },
  { requiredKeys: ['address'] },
);
const server = fc.oneof({ weight: 8, arbitrary: h(hostPort) }, { weight: 6, arbitrary: serverObject }, { weight: 1, arbitrary: anyJson });
const numberOrText = (a: fc.Arbitrary<number>): fc.Arbitrary<unknown> => fc.oneof(a, a.map(String)).chain((v) => hostileJson(fc.constant(v)));

const service = fc.record(
  {
    mode: hj(fc.constantFrom('http', 'http', 'tcp')),
    servers: fc.oneof({ weight: 16, arbitrary: fc.array(server, { maxLength: 5 }) }, { weight: 1, arbitrary: anyJson }),
    dns: fc.oneof(
      { weight: 12, arbitrary: fc.record({ name: hj(dnsName), port: numberOrText(port), slots: numberOrText(fc.integer({ min: 1, max: 1000 })) }, { requiredKeys: ['name', 'port'] }) },
      { weight: 1, arbitrary: anyJson },
    ),
    route: fc.oneof(
      { weight: 12, arbitrary: fc.record({ domain: hj(dnsName), path: hj(urlPath), port: numberOrText(fc.integer({ min: 1024, max: 65535 })) }, optional) },
      { weight: 1, arbitrary: anyJson },
    ),
    // Now and then a field the schema does not have.
    weight: fc.oneof({ weight: 20, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: anyJson }),
  },
  { requiredKeys: [] },
).map((s) => {
  const { weight, ...rest } = s as Record<string, unknown>;
  return weight === null || weight === undefined ? rest : s;
});

const hostileDoc: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 20, arbitrary: fc.record({ services: fc.dictionary(hostile(name, 40), fc.oneof({ weight: 20, arbitrary: service }, { weight: 1, arbitrary: anyJson }), { minKeys: 1, maxKeys: 5 }) }) },
  { weight: 1, arbitrary: fc.record({ services: fc.dictionary(name, service, { maxKeys: 2 }), version: anyJson }) },
  { weight: 1, arbitrary: anyJson },
  { weight: 1, arbitrary: fc.constantFrom(null, undefined, {}, { services: null }, { services: [] }, []) },
);

// Valid documents: unique names, tcp services with a listen port of their own, server names
// that are not a DNS slot's, every field of the right type.
const validName = fc.stringMatching(/^[a-z][a-z0-9_.-]{0,20}$/).filter((n) => !['stats', 'fe_http', 'fe_default', 'demo', 'demo_backend'].includes(n));
const validServer = fc.oneof(
  hostPort,
  fc.record({ address: hostPort, name: fc.stringMatching(/^[a-z][a-z0-9_.:-]{0,20}$/).filter((n) => !/^srv\d/.test(n)), weight: fc.integer({ min: 0, max: 256 }), state: fc.constantFrom('ready', 'drain', 'maint') }, { requiredKeys: ['address'] }),
);
const validService = fc
  .record({
    mode: fc.constantFrom('http', 'tcp'),
    servers: fc.array(validServer, { maxLength: 4 }),
    dns: fc.option(fc.record({ name: dnsName, port, slots: fc.integer({ min: 1, max: 100 }) }, { requiredKeys: ['name', 'port'] })),
    route: fc.option(fc.record({ domain: dnsName, path: urlPath }, optional)),
    listen: fc.integer({ min: 10000, max: 60000 }),
  })
  .map(({ mode, servers, dns, route, listen }) => {
    // Server names unique within the service (a string server is named after its address).
    const seen = new Set<string>();
    const unique = servers.filter((s) => {
      const key = typeof s === 'string' ? toName(s) : (s.name ?? toName(s.address));
      if (seen.has(key)) return false;
      seen.add(key);
      return true;
    });
    const r = mode === 'tcp' || route === null ? { port: listen } : route;
    return { mode, servers: unique, ...(dns === null ? {} : { dns }), route: r };
  });
const validDoc = fc
  .uniqueArray(fc.tuple(validName, validService), { maxLength: 4, selector: ([n]) => n })
  .map((entries) => {
    // One listen port per service.
    const ports = new Set<number>();
    const kept = entries.filter(([, s]) => {
      const p = (s.route as { port?: number }).port;
      if (p === undefined) return true;
      if (ports.has(p)) return false;
      ports.add(p);
      return true;
    });
    return { services: Object.fromEntries(kept) };
  });

const fileFamily = (n: string, arbitrary: fc.Arbitrary<unknown>, allAccepted: boolean) =>
  layoutFamily<unknown>({
    name: n,
    arbitrary,
    source: 'file',
    layout: (doc) => fileLayout(doc, { source: 'file' }),
    // The documented whole-file errors: not a mapping, or "services" not a mapping.
    wholeError: (err, doc) =>
      err instanceof Error &&
      /the document is not a mapping|"services" is not a mapping/.test(err.message) &&
      (typeof doc !== 'object' || doc === null || Array.isArray(doc) || typeof (doc as { services?: unknown }).services !== 'object' || Array.isArray((doc as { services?: unknown }).services)),
    keys: (doc) => flattenKeys(doc),
    allAccepted,
    batchSize: 200,
  });

test('fuzz: discovery file layout, hostile documents', (t) => runFamily(t, fileFamily('file', hostileDoc, false)));
test('fuzz: discovery file layout, valid documents are all kept', (t) => runFamily(t, fileFamily('file valid', validDoc, true), FUZZ_VALID_RUNS));
