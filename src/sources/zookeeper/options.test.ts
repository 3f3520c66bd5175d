import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseListenOptions, parseServerOptions, OptionError } from './options.js';

test('seed 004 example options pass and are normalised', () => {
  assert.deepEqual(parseListenOptions(['mode http']), { mode: 'http', lines: [] });
  assert.deepEqual(parseServerOptions(['check inter 2000']), ['check', 'inter', '2000']);
  assert.deepEqual(parseServerOptions(['check', 'inter 2s', 'rise  2 fall 3']), ['check', 'inter', '2s', 'rise', '2', 'fall', '3']);
});

test('allowed listen lines, one table', () => {
  const ok: [string, string][] = [
    ['balance leastconn', 'balance leastconn'],
    ['balance   roundrobin', 'balance roundrobin'],
    ['balance url_param userid', 'balance url_param userid'],
    ['balance hdr(X-Tenant)', 'balance hdr(X-Tenant)'],
    ['option httpchk', 'option httpchk'],
    ['option httpchk /health', 'option httpchk /health'],
    ['option httpchk GET /health?full=1', 'option httpchk GET /health?full=1'],
    ['option httpchk HEAD / HTTP/1.0', 'option httpchk HEAD / HTTP/1.0'],
    ['option httplog', 'option httplog'],
    ['option tcplog', 'option tcplog'],
    ['option redispatch', 'option redispatch'],
    ['option forwardfor', 'option forwardfor'],
    ['option forwardfor if-none', 'option forwardfor if-none'],
    ['\ttimeout server 30s', 'timeout server 30s'],
    ['timeout connect 500', 'timeout connect 500'],
    ['timeout http-request 10s', 'timeout http-request 10s'],
    ['maxconn 2000', 'maxconn 2000'],
    ['retries 3', 'retries 3'],
    ['hash-type consistent djb2 avalanche', 'hash-type consistent djb2 avalanche'],
    ['http-check expect status 200', 'http-check expect status 200'],
    ['http-check expect ! string maintenance', 'http-check expect ! string maintenance'],
    ['http-check send meth GET uri /ready ver HTTP/1.1 hdr Host app.example.com', 'http-check send meth GET uri /ready ver HTTP/1.1 hdr Host app.example.com'],
    ['http-check disable-on-404', 'http-check disable-on-404'],
  ];
  for (const [input, want] of ok) assert.deepEqual(parseListenOptions([input]).lines, [want], input);
  assert.deepEqual(parseListenOptions(['mode tcp', '', 'retries 2']), { mode: 'tcp', lines: ['retries 2'] });
});

test('rejected listen lines: injection, unknown directives, bad arguments', () => {
  const bad: unknown[] = [
    'mode http\nlisten evil 0.0.0.0:1',
    'balance roundrobin\r',
    'option httpchk GET /\u0000',
    'timeout server 30s # comment',
    'option httpchk GET "/x"',
    'http-check send hdr Host %[env(SECRET)]',
    'http-check send hdr Host ${SECRET}',
    'http-check send meth GET uri /a\\r\\nHost:x',
    'server evil 6.6.6.6:80',
    'bind :1',
    'use_backend x',
    'stats enable',
    'http-request set-header X a',
    'acl a src 1.2.3.4',
    'lua-load /tmp/x.lua',
    'option httpchk DELETE /',
    'option transparent',
    'option',
    'balance',
    'balance hdr(a b)',
    'balance roundrobin leastconn',
    'timeout server',
    'timeout server 30 s',
    'timeout server forever',
    'timeout bogus 1s',
    'maxconn -1',
    'maxconn 1e3',
    'retries 1000',
    'mode udp',
    'mode',
    'http-check expect rstatus ^2',
    'http-check expect status 2000',
    'x'.repeat(300),
    'option httplog é',
    42,
    null,
    ['mode http'],
  ];
  for (const line of bad) assert.throws(() => parseListenOptions([line]), OptionError, JSON.stringify(line));
  assert.throws(() => parseListenOptions(['mode http', 'mode tcp']), /mode is set twice/);
  assert.throws(() => parseListenOptions('mode http'), /not an array/);
  assert.throws(() => parseListenOptions(Array(65).fill('retries 1')), /more than 64/);
});

test('rejection messages name the entry and stay on one line', () => {
  try {
    parseListenOptions(['retries 1', 'stats enable\nserver x 1.1.1.1:1']);
    assert.fail('accepted');
  } catch (err) {
    assert.match((err as Error).message, /^listen_options\[1\] /);
    assert.ok(!(err as Error).message.includes('\n'));
  }
});

test('allowed server keywords', () => {
  const ok = [
    'check', 'backup', 'ssl verify none', 'ssl verify required ca-file @system-ca sni str(api.example.com)', 'sni req.hdr(host)',
    'inter 2s fastinter 500ms downinter 10s rise 2 fall 3', 'weight 0', 'weight 256', 'maxconn 100 maxqueue 10', 'slowstart 30s',
    'send-proxy-v2', 'check-ssl verify none check-sni api.example.com', 'alpn h2,http/1.1', 'port 8081', 'observe layer7 error-limit 10 on-error mark-down',
    'init-addr last,libc,none', 'agent-check agent-port 9999 agent-inter 5s', 'on-marked-down shutdown-sessions',
    'ssl verify none ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3',
  ];
  for (const o of ok) assert.deepEqual(parseServerOptions([o]), o.split(' '), o);
  assert.deepEqual(parseServerOptions(['proto h2'], 'http'), ['proto', 'h2']);
});

test('combinations HAProxy refuses at load are refused (one blob must not fail every candidate)', () => {
  // Each of these makes `haproxy -c` fail the whole config (2.6.12): "verify is enabled by default
  // but no CA file specified", "MUX protocol 'h2' is not usable", "does not have agent port",
  // "all SSL/TLS versions are disabled".
  const bad: [string, 'http' | 'tcp', RegExp][] = [
    ['ssl', 'http', /verify none/],
    ['check check-ssl', 'http', /verify none/],
    ['ssl verify required', 'http', /ca-file @system-ca/],
    ['ssl ca-file @system-ca', 'http', /verify/],
    ['proto h2', 'tcp', /needs "mode http"/],
    ['proto h1', 'tcp', /needs "mode http"/],
    ['check agent-check', 'tcp', /agent-port/],
    ['ssl verify none ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.0', 'http', /above ssl-max-ver/],
  ];
  for (const [o, mode, why] of bad) assert.throws(() => parseServerOptions([o], mode), why, o);
});

test('rejected server keywords', () => {
  const bad = [
    'check\nserver evil 6.6.6.6:80', 'weight 257', 'weight -1', 'inter', 'inter soon', 'rise 0', 'disabled', 'track other/srv',
    'ca-file /etc/shadow', 'crt /etc/ssl/private/key.pem', 'sni str(a b)', 'sni hdr(host)', 'sni str(%[env(X)])', 'verify maybe',
    'redir http://evil', 'cookie x', 'id 5', 'resolvers dns', 'addr 1.2.3.4', 'check #', 'check "x"', 'proto fcgi', 'port 0',
  ];
  for (const o of bad) assert.throws(() => parseServerOptions([o]), OptionError, o);
  assert.throws(() => parseServerOptions('check'), /not an array/);
  assert.throws(() => parseServerOptions([7]), /not a string/);
  assert.throws(() => parseServerOptions(Array(65).fill('check')), /more than 64/);
});

test('absent options are empty', () => {
  assert.deepEqual(parseListenOptions(undefined), { lines: [] });
  assert.deepEqual(parseServerOptions(null), []);
});
