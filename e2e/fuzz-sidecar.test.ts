/**
 * Fuzz: the Sidecar source's state as it arrives over the network (src/sources/sidecar/state.ts
 * decodes untrusted JSON) and its layout (src/sources/sidecar/layout.ts, haproxy-api's grouping).
 * See docs/fuzzing.md.
 */
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeServicesState, SidecarStateError } from '../src/sources/sidecar/state.js';
import { sidecarLayout } from '../src/sources/sidecar/layout.js';
import type { LayoutResult } from '../src/state/layout.js';
import { anyJson, dnsName, hostile, hostileJson, ip, ipv4, label, port } from './support/fuzz/arbitraries.js';
import { layoutFamily } from './support/fuzz/layout-family.js';
import { FUZZ_VALID_RUNS, fuzzSuite, type Family } from './support/fuzz/run.js';

const runFamily = fuzzSuite();

const h = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => hostile(valid, 30);
const T = '2024-05-01T10:00:00Z';
const LAST = '2024-05-01T10:05:00.123456789Z';

interface SidecarValue {
  /** The JSON document as Sidecar would send it. */
  doc: unknown;
  bindIp?: string;
  useHostnames: boolean;
}

const intField = (valid: fc.Arbitrary<number>): fc.Arbitrary<unknown> =>
  fc.oneof({ weight: 12, arbitrary: valid }, { weight: 1, arbitrary: fc.constantFrom(-1, 0, 65536, 1e9, 1.5, Number.MAX_SAFE_INTEGER + 2) }, { weight: 1, arbitrary: anyJson });

const portRecord = fc.record(
  {
    Type: hostileJson(h(fc.constantFrom('tcp', 'tcp', 'udp'))),
    Port: intField(port),
    ServicePort: intField(fc.oneof(fc.integer({ min: 1024, max: 65535 }), fc.constantFrom(0, 80, 443, 1936, 5000, 7778))),
    IP: hostileJson(h(fc.oneof(ipv4, ip, fc.constant('')))),
  },
  { requiredKeys: ['Type', 'Port', 'IP'] },
);

const serviceRecord = fc.record({
  ID: fc.oneof({ weight: 12, arbitrary: fc.constant(null) }, { weight: 1, arbitrary: anyJson }),
  Name: hostileJson(h(fc.oneof(label, fc.constantFrom('orders', 'Orders', 'web_api', 'api', '_svc', 'stats')))),
  Image: fc.constant('img:1'),
  Created: fc.constant(T),
  Hostname: hostileJson(h(fc.oneof(dnsName, ip))),
  Ports: fc.oneof({ weight: 12, arbitrary: fc.array(portRecord, { maxLength: 3 }) }, { weight: 1, arbitrary: anyJson }),
  Updated: hostileJson(fc.constantFrom(T, LAST, '2024-04-01T00:00:00Z', 'yesterday')),
  ProxyMode: hostileJson(h(fc.constantFrom('http', 'tcp', 'ws', ''))),
  Status: intField(fc.constantFrom(0, 0, 0, 1, 2, 3, 4, 7)),
});

// Services by ID; the record's ID is its key (null above), now and then something else.
const serverRecord = fc
  .array(fc.tuple(h(fc.stringMatching(/^[0-9a-f]{6,12}$/)), fc.oneof({ weight: 12, arbitrary: serviceRecord }, { weight: 1, arbitrary: anyJson })), { maxLength: 3 })
  .map((entries) => ({
    Name: 'host',
    Services: Object.fromEntries(entries.map(([id, rec]) => [id, rec !== null && typeof rec === 'object' && !Array.isArray(rec) && (rec as { ID?: unknown }).ID === null ? { ...rec, ID: id } : rec])),
    LastUpdated: T,
    LastChanged: T,
  }));

const hostileDoc: fc.Arbitrary<unknown> = fc.oneof(
  {
    weight: 20,
    arbitrary: fc.record({
      Servers: fc.dictionary(h(fc.oneof(dnsName, ip)), fc.oneof({ weight: 12, arbitrary: serverRecord }, { weight: 1, arbitrary: anyJson }), { minKeys: 1, maxKeys: 3 }),
      LastChanged: fc.constant(LAST),
      ClusterName: fc.constant('default'),
      Hostname: fc.constant('web-01'),
    }),
  },
  { weight: 1, arbitrary: fc.record({ Servers: anyJson, LastChanged: hostileJson(h(fc.constant(LAST))), ClusterName: anyJson }, { requiredKeys: [] }) },
  { weight: 1, arbitrary: anyJson },
);

const options = fc.record({ bindIp: fc.option(fc.constantFrom('127.0.0.1', '0.0.0.0', '::1', '192.168.168.168'), { nil: undefined }), useHostnames: fc.boolean() }, { requiredKeys: ['useHostnames'] });

function sidecarFamily(n: string, arbitrary: fc.Arbitrary<SidecarValue>, allAccepted: boolean): Family<SidecarValue> {
  return layoutFamily<SidecarValue>({
    name: n,
    arbitrary,
    source: 'sidecar',
    layout: (v): LayoutResult => {
      const decoded = decodeServicesState(v.doc);
      const r = sidecarLayout(decoded.state, { source: 'sidecar', useHostnames: v.useHostnames, ...(v.bindIp === undefined ? {} : { bindIp: v.bindIp }) });
      // The source logs both: records decode left out, and what the layout skipped.
      return { backends: r.backends, skipped: [...decoded.skipped, ...r.skipped] };
    },
    // A document that cannot be used at all is refused whole (the source keeps its last state).
    wholeError: (err) => err instanceof SidecarStateError,
    allAccepted,
    batchSize: 200,
  });
}

// Valid: lower-case names, each service's ServicePorts unique across services, Alive instances.
const validValue: fc.Arbitrary<SidecarValue> = fc
  .tuple(
    fc.uniqueArray(fc.record({ name: fc.stringMatching(/^[a-z][a-z0-9-]{0,15}$/), servicePorts: fc.uniqueArray(fc.integer({ min: 10000, max: 60000 }), { minLength: 1, maxLength: 2 }) }), { maxLength: 3, selector: (s) => s.name }),
    fc.uniqueArray(fc.tuple(label.map((l) => l.toLowerCase()), ipv4), { minLength: 1, maxLength: 3, selector: ([host]) => host }),
    options,
  )
  .map(([services, hosts, opts]) => {
    const used = new Set<number>();
    const kept = services.filter((s) => s.name !== 'stats' && s.servicePorts.every((p) => !used.has(p)) && s.servicePorts.every((p) => used.add(p)));
    const Servers: Record<string, unknown> = {};
    hosts.forEach(([host, addr], hi) => {
      const Services: Record<string, unknown> = {};
      kept.forEach((s, si) => {
        const id = `${si}${hi}abcdef`;
        Services[id] = { ID: id, Name: s.name, Image: 'img', Created: T, Hostname: host, Ports: s.servicePorts.map((sp, pi) => ({ Type: 'tcp', Port: 30000 + pi, ServicePort: sp, IP: addr })), Updated: T, ProxyMode: 'http', Status: 0 };
      });
      Servers[host] = { Name: host, Services, LastUpdated: T, LastChanged: T };
    });
    return { doc: { Servers, LastChanged: LAST, ClusterName: 'default', Hostname: 'web-01' }, useHostnames: opts.useHostnames, ...(opts.bindIp === undefined ? {} : { bindIp: opts.bindIp }) };
  });

const hostileValue: fc.Arbitrary<SidecarValue> = fc.tuple(hostileDoc, options).map(([doc, o]) => ({ doc, ...o }));

test('fuzz: Sidecar state and layout, hostile documents', (t) => runFamily(t, sidecarFamily('sidecar', hostileValue, false)));
test('fuzz: Sidecar state and layout, valid states are all kept', (t) => runFamily(t, sidecarFamily('sidecar valid', validValue, true), FUZZ_VALID_RUNS));
