import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decodeServicesState, decodeStateChangedEvent, parseGoTime, parseJsonBody, SidecarStateError } from './state.js';

const svc = (over: Record<string, unknown> = {}): Record<string, unknown> => ({
  ID: '3a1f0c9d2b7e',
  Name: 'orders',
  Image: 'registry.example.com/orders:1.4.2',
  Created: '2024-05-01T09:58:10Z',
  Hostname: 'web-01',
  Ports: [{ Type: 'tcp', Port: 31871, ServicePort: 10100, IP: '10.0.1.11' }],
  Updated: '2024-05-01T10:02:03.512340918Z',
  ProxyMode: 'http',
  Status: 0,
  ...over,
});

const doc = (services: Record<string, unknown>, over: Record<string, unknown> = {}): Record<string, unknown> => ({
  Servers: { 'web-01': { Name: 'web-01', Services: services, LastUpdated: '2024-05-01T10:02:03Z', LastChanged: '2024-05-01T09:58:12Z' } },
  LastChanged: '2024-05-01T10:01:30.000000001Z',
  ClusterName: 'default',
  Hostname: 'web-01',
  ...over,
});

test('Go timestamps: nanoseconds, offsets, the zero time, and garbage', () => {
  const cases: [unknown, bigint | undefined][] = [
    ['1970-01-01T00:00:00Z', 0n],
    ['1970-01-01T00:00:00.000000001Z', 1n],
    ['1970-01-01T00:00:01.5Z', 1_500_000_000n],
    ['1970-01-01T02:00:00+02:00', 0n],
    ['1969-12-31T23:00:00-01:00', 0n],
    ['2024-05-01T10:02:03.512340918Z', 1714557723512340918n],
    ['0001-01-01T00:00:00Z', -62135596800000000000n],
    ['2024-02-30T00:00:00Z', undefined],
    ['2024-05-01 10:02:03Z', undefined],
    ['2024-05-01T24:00:00Z', undefined],
    ['2024-05-01T10:02:03', undefined],
    ['2024-05-01T10:02:03.1234567890Z', undefined],
    [1714557723, undefined],
    [null, undefined],
    ['2024-05-01T10:02:03Z\n', undefined],
  ];
  for (const [input, want] of cases) assert.equal(parseGoTime(input), want, JSON.stringify(input));
  assert.ok(parseGoTime('2024-05-01T10:02:03.000000002Z')! > parseGoTime('2024-05-01T10:02:03.000000001Z')!, 'sub-millisecond order is kept');
});

test('a well-formed state decodes field by field in Sidecar key order', () => {
  const d = decodeServicesState(doc({ '3a1f0c9d2b7e': { ...svc(), Extra: 'dropped' } }));
  assert.deepEqual(d.skipped, []);
  assert.equal(d.lastChangedNs, parseGoTime('2024-05-01T10:01:30.000000001Z'));
  assert.deepEqual(Object.keys(d.state), ['Servers', 'LastChanged', 'ClusterName', 'Hostname']);
  const server = d.state.Servers['web-01']!;
  assert.deepEqual(Object.keys(server), ['Name', 'Services', 'LastUpdated', 'LastChanged']);
  const s = server.Services['3a1f0c9d2b7e']!;
  assert.deepEqual(Object.keys(s), ['ID', 'Name', 'Image', 'Created', 'Hostname', 'Ports', 'Updated', 'ProxyMode', 'Status']);
  assert.deepEqual(Object.keys(s.Ports[0]!), ['Type', 'Port', 'ServicePort', 'IP']);
  assert.equal(JSON.parse(JSON.stringify(d.state)).Servers['web-01'].Services['3a1f0c9d2b7e'].Extra, undefined);
});

test('documents that cannot be ordered or used are refused whole, naming the problem', () => {
  const cases: [unknown, RegExp][] = [
    [null, /State is not a JSON object \(null\)/],
    [[], /not a JSON object \(an array\)/],
    ['state', /not a JSON object \(a string\)/],
    [doc({}, { LastChanged: undefined }), /State\.LastChanged is not an RFC 3339 timestamp \(missing\)/],
    [doc({}, { LastChanged: 12 }), /LastChanged is not an RFC 3339 timestamp \(a number\)/],
    [doc({}, { LastChanged: 'yesterday\nbackend x' }), /LastChanged is not an RFC 3339 timestamp \("yesterday\\nbackend x"\)/],
    [doc({}, { Servers: [] }), /State\.Servers is not an object \(an array\)/],
    [doc({}, { Servers: 'x' }), /State\.Servers is not an object/],
    [doc({}, { ClusterName: 5 }), /State\.ClusterName is not a string/],
  ];
  for (const [input, re] of cases) {
    assert.throws(() => decodeServicesState(input), (err: unknown) => err instanceof SidecarStateError && re.test(err.message), JSON.stringify(input));
  }
});

test('Servers: null is an empty state (Go nil map)', () => {
  assert.deepEqual(Object.keys(decodeServicesState(doc({}, { Servers: null })).state.Servers), []);
});

test('records with wrong types are skipped by path, the others kept', () => {
  const services: Record<string, unknown> = {
    good: svc({ ID: 'good' }),
    statusText: svc({ ID: 'statusText', Status: 'Alive' }),
    portText: svc({ ID: 'portText', Ports: [{ Type: 'tcp', Port: '80', ServicePort: 8080, IP: '10.0.0.1' }] }),
    portFloat: svc({ ID: 'portFloat', Ports: [{ Type: 'tcp', Port: 80.5, ServicePort: 8080, IP: '10.0.0.1' }] }),
    portsObject: svc({ ID: 'portsObject', Ports: { a: 1 } }),
    portNull: svc({ ID: 'portNull', Ports: [null] }),
    nameNumber: svc({ ID: 'nameNumber', Name: 42 }),
    noName: svc({ ID: 'noName', Name: undefined }),
    notObject: 'service',
    'bad\nid': svc({ ID: 'x', Hostname: ['web'] }),
  };
  const d = decodeServicesState(doc(services));
  assert.deepEqual(Object.keys(d.state.Servers['web-01']!.Services), ['good']);
  const byKey = Object.fromEntries(d.skipped.map((s) => [s.key, s.reason]));
  assert.deepEqual(Object.keys(byKey).sort(), [
    'Servers/web-01/Services/"bad\\nid"',
    'Servers/web-01/Services/nameNumber',
    'Servers/web-01/Services/noName',
    'Servers/web-01/Services/notObject',
    'Servers/web-01/Services/portFloat',
    'Servers/web-01/Services/portNull',
    'Servers/web-01/Services/portText',
    'Servers/web-01/Services/portsObject',
    'Servers/web-01/Services/statusText',
  ]);
  assert.match(byKey['Servers/web-01/Services/statusText']!, /Status is not an integer \(a string\)/);
  assert.match(byKey['Servers/web-01/Services/portText']!, /Ports\[0\]: Port is not an integer/);
  assert.match(byKey['Servers/web-01/Services/portFloat']!, /Port is not an integer \(a number 80\.5\)/);
  assert.match(byKey['Servers/web-01/Services/noName']!, /Name is missing/);
  for (const s of d.skipped) assert.ok(!s.key.includes('\n') && !s.reason.includes('\n'), 'keys and reasons are one line');
});

test('a server that is not an object, or whose Services is not, is skipped by host', () => {
  const d = decodeServicesState({
    Servers: { a: 'x', b: { Name: 'b', Services: [] }, c: { Name: 'c', Services: { s: svc({ ID: 's', Hostname: 'c' }) } } },
    LastChanged: '2024-05-01T10:00:00Z',
  });
  assert.deepEqual(Object.keys(d.state.Servers), ['c']);
  assert.deepEqual(d.skipped.map((s) => s.key).sort(), ['Servers/a', 'Servers/b']);
});

test('a host or ID named __proto__ is data, not a prototype switch', () => {
  const raw = JSON.parse(`{"Servers":{"__proto__":{"Name":"p","Services":{"__proto__":${JSON.stringify(svc({ ID: '__proto__' }))}}}},"LastChanged":"2024-05-01T10:00:00Z"}`);
  const d = decodeServicesState(raw);
  assert.deepEqual(Object.keys(d.state.Servers), ['__proto__']);
  assert.deepEqual(Object.keys(d.state.Servers['__proto__']!.Services), ['__proto__']);
});

test('StateChangedEvent: the State decides; a bad ChangeEvent only loses last_service_changed', () => {
  const ok = decodeStateChangedEvent({ State: doc({ s: svc() }), ChangeEvent: { Service: svc(), PreviousStatus: 3, Time: '2024-05-01T10:01:30Z' } });
  assert.equal(ok.changedService?.Name, 'orders');
  const badChange = decodeStateChangedEvent({ State: doc({ s: svc() }), ChangeEvent: { Service: 'x' } });
  assert.equal(badChange.changedService, null);
  assert.deepEqual(badChange.skipped.map((s) => s.key), ['ChangeEvent.Service']);
  assert.throws(() => decodeStateChangedEvent({ ChangeEvent: {} }), /the body has no State/);
  assert.throws(() => decodeStateChangedEvent([1]), /the body is not a JSON object/);
  assert.throws(() => decodeStateChangedEvent({ State: { Servers: {} } }), /State\.LastChanged/);
});

test('bodies: empty and malformed text are errors that say so', () => {
  assert.throws(() => parseJsonBody(''), /the body is empty/);
  assert.throws(() => parseJsonBody(' \n'), /the body is empty/);
  assert.throws(() => parseJsonBody('{"State":'), /the body is not JSON/);
  assert.deepEqual(parseJsonBody('{"a":1}'), { a: 1 });
});

test('a body that is not JSON is refused with a one-line reason, whatever it holds (fuzz regression)', () => {
  assert.throws(() => parseJsonBody('\n    server evil 6.6.6.6:1'), (e: unknown) => e instanceof SidecarStateError && /^the body is not JSON/.test(e.message) && !e.message.includes('\n'));
});
