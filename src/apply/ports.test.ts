import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:net';
import { isPilotError } from '../errors.js';
import { bindPorts, checkPortsFree, portKey, tryBindTcp, type BindPort } from './ports.js';

const keys = (ports: BindPort[]) => ports.map(portKey);

const cases: [string, string, string[]][] = [
  ['bare port', 'bind :80', ['0.0.0.0:80']],
  ['star', 'bind *:80', ['0.0.0.0:80']],
  ['list with IPv6 any', 'bind 0.0.0.0:80,:::443', ['0.0.0.0:80', '[::]:443']],
  ['ssl params', 'bind 127.0.0.1:8080 ssl crt /etc/haproxy/certs/ alpn h2,http/1.1', ['127.0.0.1:8080']],
  ['bracketed IPv6', 'bind [::1]:8443 ssl crt x.pem', ['[::1]:8443']],
  ['ipv6@ prefix with empty address', 'bind ipv6@:8081', ['[::]:8081']],
  ['ipv4@ prefix', 'bind ipv4@127.0.0.2:8082', ['127.0.0.2:8082']],
  ['range', 'bind :9000-9002', ['0.0.0.0:9000', '0.0.0.0:9001', '0.0.0.0:9002']],
  ['unix socket path', 'bind /var/run/haproxy.sock mode 600', []],
  ['unix@ and abns@', 'bind unix@/tmp/x.sock,abns@foo', []],
  ['fd@ and quic', 'bind fd@3,quic4@:443', []],
  ['env expansion is unknowable', 'bind "${PORT}"', []],
  ['comment', '# bind :81', []],
  ['trailing comment', 'bind :82 # public', ['0.0.0.0:82']],
  ['not a bind line', 'stats socket ipv4@127.0.0.1:9999 level admin', []],
];

for (const [name, line, want] of cases) {
  test(`bindPorts: ${name}`, () => {
    assert.deepEqual(keys(bindPorts(`frontend f\n    ${line}\n    mode http\n`)), want);
  });
}

test('bindPorts: every section, deduplicated', () => {
  const cfg = 'frontend a\n  bind :80\nlisten stats\n  bind 127.0.0.1:1936\nfrontend b\n  bind :80\npeers p\n  bind :10000\n';
  assert.deepEqual(keys(bindPorts(cfg)), ['0.0.0.0:80', '127.0.0.1:1936', '0.0.0.0:10000']);
});

function fakeBind(busy: Record<string, string>) {
  const tried: string[] = [];
  const tryBind = async (p: BindPort) => {
    tried.push(portKey(p));
    const code = busy[portKey(p)];
    if (code) throw Object.assign(new Error(code), { code });
  };
  return { tried, tryBind };
}

test('checkPortsFree: only ports the running config does not hold are tried', async () => {
  const { tried, tryBind } = fakeBind({});
  const current = bindPorts('frontend f\n bind :80\n bind 127.0.0.1:1936');
  const next = bindPorts('frontend f\n bind :80\n bind 127.0.0.1:1936\n bind :8080\n bind 127.0.0.1:80');
  const tested = await checkPortsFree(next, current, { tryBind });
  assert.deepEqual(tried, ['0.0.0.0:8080']);
  assert.deepEqual(keys(tested), ['0.0.0.0:8080']);
});

test('checkPortsFree: a busy port is refused with E_PORT_BUSY naming it', async () => {
  const { tryBind } = fakeBind({ '0.0.0.0:8080': 'EADDRINUSE' });
  await assert.rejects(checkPortsFree(bindPorts('frontend f\n bind :8080'), [], { tryBind }), (err: unknown) => {
    assert.ok(isPilotError(err, 'E_PORT_BUSY'));
    assert.match(err.message, /0\.0\.0\.0:8080/);
    assert.match(err.message, /in use/);
    return true;
  });
});

test('checkPortsFree: EACCES is not proof the port is busy', async () => {
  const { tried, tryBind } = fakeBind({ '0.0.0.0:80': 'EACCES' });
  await checkPortsFree(bindPorts('frontend f\n bind :80'), [], { tryBind });
  assert.deepEqual(tried, ['0.0.0.0:80']);
});

function listen(host: string): Promise<Server> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen({ host, port: 0 }, () => resolve(s));
  });
}

test('tryBindTcp: real sockets: a free port binds, a held one fails with EADDRINUSE', async (t) => {
  const held = await listen('127.0.0.1');
  t.after(() => held.close());
  const port = (held.address() as { port: number }).port;
  await assert.rejects(tryBindTcp({ address: '127.0.0.1', port }), { code: 'EADDRINUSE' });
  await assert.rejects(checkPortsFree([{ address: '127.0.0.1', port }], []), (err: unknown) => isPilotError(err, 'E_PORT_BUSY'));
  // The probe releases what it binds: probing twice works.
  const free = await listen('127.0.0.1');
  const freePort = (free.address() as { port: number }).port;
  await new Promise((r) => free.close(r));
  await tryBindTcp({ address: '127.0.0.1', port: freePort });
  await tryBindTcp({ address: '127.0.0.1', port: freePort });
});
