/**
 * Fuzz: the environment families through src/config/load.ts (loadConfig with an injected
 * environment and files): SERVICE_*, RESOLVER_*, PROGRAM_*, STATS_*, HAPROXY_* and PILOT_*.
 * The variables of STATS_, HAPROXY_ and PILOT_ are read from the variable tables, so a new row is
 * fuzzed without a change here. See docs/fuzzing.md.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { ENV_TABLE, PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY, type EnvRow } from '../src/config/env-table.js';
import { sourceEnvRows } from '../src/sources/registry.js';
import { boolWord, dnsName, duration, hostPort, hostile, ip, ipPort, name, port, urlPath } from './support/fuzz/arbitraries.js';
import { envFamily, type EnvValue } from './support/fuzz/env-family.js';
import { fuzzSuite } from './support/fuzz/run.js';

const runFamily = fuzzSuite();

const h = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => hostile(valid, 20);
/** For families whose values set several variables at once: each one mostly valid, so about a third are accepted whole. */
const hm = (valid: fc.Arbitrary<string>): fc.Arbitrary<string> => hostile(valid, 60);
const int = (min: number, max: number): fc.Arbitrary<string> => fc.oneof(fc.integer({ min, max }).map(String), fc.constantFrom(String(min), String(max)));
const PASSWORD_FILE = '/run/secrets/stats-password';
const YAML_FILE = '/etc/haproxy-pilot/fuzz.yaml';

/** Values that look right for a variable, by name, else by its default's shape. */
const VALID: Record<string, fc.Arbitrary<string>> = {
  PILOT_CONFIG: fc.constantFrom(YAML_FILE, '/etc/haproxy-pilot/missing.yaml'),
  PILOT_RUN_DIR: fc.constantFrom('/run/haproxy-pilot', '/tmp/pilot-run', '/var/run/x_y.z', '/run/a=b,c@d+e'),
  PILOT_CONTROL_ADDR: fc.oneof(ipPort, port.map((p) => `:${p}`), port.map(String), fc.constant('off')),
  PILOT_TEMPLATES: fc.constantFrom('/nonexistent/templates'),
  PILOT_LOG_LEVEL: fc.constantFrom('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
  PILOT_LOG_FORMAT: fc.constantFrom('json', 'pretty'),
  PILOT_DEMO: fc.constantFrom('auto', 'on', 'off', '1', '0', 'true', 'false'),
  PILOT_DEMO_PORT: fc.oneof(port.map(String), fc.constantFrom('8080', '1936', '5000')),
  HAPROXY_BIN: fc.constantFrom('haproxy', '/usr/sbin/haproxy'),
  HAPROXY_CONFIG: fc.constantFrom('/nonexistent/haproxy.cfg'),
  HAPROXY_MAXCONN: fc.oneof(int(1, 100_000), fc.constantFrom('4096', '10000000', '1000000', '262144')),
  HAPROXY_LOG_FORMAT: fc.constantFrom('raw', 'rfc3164', 'rfc5424', 'none'),
  HAPROXY_MODE: fc.constantFrom('http', 'tcp'),
  HAPROXY_ID: name,
  'HAPROXY-ID': name,
  HAPROXY_API_FOLLOW: hostPort,
  HAPROXY_API_CONFIG_FILE: fc.constantFrom('/etc/haproxy-api.toml'),
  STATS_PORT: fc.oneof(port.map(String), fc.constantFrom('0', '1936', '7778', '5000', '80')),
  STATS_URI: fc.oneof(urlPath, urlPath.map((u) => `${u}?stats`), fc.constant('/haproxy?stats')),
  STATS_AUTH: fc.constantFrom('basic', 'none'),
  STATS_USER: name,
  STATS_PASSWORD: fc.oneof(fc.stringMatching(/^[\x21-\x7e]{1,40}$/), fc.constantFrom('occspass', 'p:w', 'a%b', 'x'.repeat(256))),
  STATS_PASSWORD_FILE: fc.constantFrom(PASSWORD_FILE, '/run/secrets/missing'),
};

function validFor(varName: string, row: EnvRow<unknown>): fc.Arbitrary<string> {
  const known = VALID[varName];
  if (known) return known;
  const d = row.default;
  if (d !== undefined && /^(0|\d+(ms|s|m|h|d))$/.test(d)) return fc.oneof(duration, fc.constant(d));
  if (d === 'on' || d === 'off') return boolWord;
  if (d !== undefined) return fc.constant(d);
  return fc.constantFrom('x', '1', '/x');
}

const ALL_ROWS: Record<string, EnvRow<unknown>> = { ...ENV_TABLE, ...sourceEnvRows() };

/** A family of plain variables: 1–4 of them, each hostile. */
function plainFamily(prefix: RegExp): fc.Arbitrary<EnvValue> {
  const names = Object.keys(ALL_ROWS).filter((n) => prefix.test(n));
  const pairs = names.map((n) => h(validFor(n, ALL_ROWS[n]!)).map((v) => [n, v] as const));
  return fc
    .tuple(fc.array(fc.oneof(...pairs), { minLength: 1, maxLength: 4 }), h(fc.stringMatching(/^[\x21-\x7e]{1,24}$/)), fc.constantFrom('stats:\n  port: 1937\n', 'haproxy:\n  maxconn: 2000\n', 'stats: [1]\n', ': :\n'))
    .map(([vars, secret, yaml]) => ({ env: Object.fromEntries(vars), files: { [PASSWORD_FILE]: `${secret}\n`, [YAML_FILE]: yaml } }));
}

// ---------------------------------------------------------------------------------------------
// SERVICE_<NAME>_<OPT>, RESOLVER_<NAME>[_OPT], PROGRAM_<NAME>[_OPT]
// ---------------------------------------------------------------------------------------------

const SERVICE_OPTS: Record<string, fc.Arbitrary<string>> = {
  BIND: fc.oneof(port.map(String), port.map((p) => `:${p}`), port.map((p) => `*:${p}`), ipPort, fc.tuple(dnsName, port).map(([d, p]) => `${d}:${p}`)),
  MODE: fc.constantFrom('http', 'tcp'),
  SERVERS: fc.array(hostPort, { minLength: 1, maxLength: 3 }).map((a) => a.join(',')),
  DNS: hostPort,
  RESOLVERS: fc.constantFrom('aws', 'dns', 'system'),
  SLOTS: int(1, 1024),
  RESOLVE_PREFER: fc.constantFrom('ipv4', 'ipv6'),
  SSL: boolWord,
  SSL_VERIFY: boolWord,
  CHECK: boolWord,
  CHECK_PATH: urlPath,
  HOST_HEADER: fc.oneof(dnsName, hostPort, fc.tuple(dnsName, port).map(([d, p]) => `${d.replace(/\.$/, '')}:${p}`)),
  BALANCE: fc.constantFrom('roundrobin', 'static-rr', 'leastconn', 'first', 'source', 'random'),
};
assert.deepEqual(Object.keys(SERVICE_OPTS).sort(), Object.keys(SERVICE_FAMILY.options).sort(), 'every SERVICE_ option has a generator');

const memberName = hm(fc.constantFrom('WEB', 'API', 'MY_APP', 'X1', 'STATS', 'FZ_KV'));
const serviceOpt = fc.oneof(...Object.entries(SERVICE_OPTS).map(([o, a]) => hm(a).map((v) => [o, v] as const)), fc.tuple(hm(fc.constantFrom('TIMEOUT', 'WEIGHT', 'BIND_X')), fc.constant('1')));
const serviceValue: fc.Arbitrary<EnvValue> = fc
  .array(
    fc.record({
      name: memberName,
      bind: hm(SERVICE_OPTS.BIND!),
      target: fc.oneof(hm(SERVICE_OPTS.SERVERS!).map((v) => ['SERVERS', v] as const), hm(SERVICE_OPTS.DNS!).map((v) => ['DNS', v] as const)),
      opts: fc.array(serviceOpt, { maxLength: 4 }),
    }),
    { minLength: 1, maxLength: 2 },
  )
  .chain((services) =>
    fc.constantFrom<Record<string, string>>({}, { RESOLVER_AWS: 'aws' }, { RESOLVER_DNS: '10.0.0.2:53,[::1]:5353' }).map((resolvers) => {
      const env: Record<string, string> = { ...resolvers };
      for (const s of services) {
        env[`SERVICE_${s.name}_BIND`] = s.bind;
        env[`SERVICE_${s.name}_${s.target[0]}`] = s.target[1];
        for (const [o, v] of s.opts) env[`SERVICE_${s.name}_${o}`] = v;
      }
      return { env };
    }),
  );

// Mostly what HAProxy takes (ip:port, aws, resolv.conf); a name or a bare IP now and then.
const nameserverItem = fc.oneof({ weight: 6, arbitrary: ipPort }, { weight: 3, arbitrary: fc.constantFrom('aws', 'resolv.conf') }, { weight: 1, arbitrary: hostPort }, { weight: 1, arbitrary: ip });
const resolverValue: fc.Arbitrary<EnvValue> = fc
  .tuple(
    fc.array(
      fc.record({
        name: hm(fc.constantFrom('AWS', 'DNS', 'LOCAL_1')),
        servers: hm(fc.array(nameserverItem, { minLength: 1, maxLength: 3 }).map((a) => a.join(','))),
        hold: fc.option(hm(duration), { nil: undefined }),
        payload: fc.option(hm(fc.oneof(int(512, 65535), fc.constantFrom('511', '65536', '8192'))), { nil: undefined }),
      }),
      { minLength: 1, maxLength: 2 },
    ),
    fc.boolean(),
  )
  .map(([resolvers, dnsService]) => {
    const env: Record<string, string> = {};
    for (const r of resolvers) {
      env[`RESOLVER_${r.name}`] = r.servers;
      if (r.hold !== undefined) env[`RESOLVER_${r.name}_HOLD_VALID`] = r.hold;
      if (r.payload !== undefined) env[`RESOLVER_${r.name}_ACCEPTED_PAYLOAD_SIZE`] = r.payload;
    }
    // A service that resolves through the first one (the fixed snapshot's DNS backend does too).
    if (dnsService) Object.assign(env, { SERVICE_API_BIND: '127.0.0.1:9100', SERVICE_API_DNS: 'api.example.com:443', SERVICE_API_SSL: 'on' });
    return { env };
  });

const programValue: fc.Arbitrary<EnvValue> = fc
  .array(
    fc.record({
      name: hm(fc.constantFrom('WEB', 'WORKER_1', 'D')),
      command: hm(fc.constantFrom('sleep 60', '/bin/sh -c "echo hi; sleep 1"', "node app.js --port '8080'", 'a\\ b c', '"unterminated')),
      restart: fc.option(hm(fc.constantFrom('on-failure', 'always', 'never')), { nil: undefined }),
      user: fc.option(hm(fc.constantFrom('haproxy', '99', 'nobody')), { nil: undefined }),
      group: fc.option(hm(fc.constantFrom('haproxy', '99')), { nil: undefined }),
      reload: fc.option(hm(boolWord), { nil: undefined }),
    }),
    { minLength: 1, maxLength: 2 },
  )
  .map((programs) => {
    const env: Record<string, string> = {};
    for (const p of programs) {
      env[`PROGRAM_${p.name}`] = p.command;
      if (p.restart !== undefined) env[`PROGRAM_${p.name}_RESTART`] = p.restart;
      if (p.user !== undefined) env[`PROGRAM_${p.name}_USER`] = p.user;
      if (p.group !== undefined) env[`PROGRAM_${p.name}_GROUP`] = p.group;
      if (p.reload !== undefined) env[`PROGRAM_${p.name}_START_ON_RELOAD`] = p.reload;
    }
    return { env };
  });
assert.deepEqual(Object.keys(PROGRAM_FAMILY.options).sort(), ['', 'GROUP', 'RESTART', 'START_ON_RELOAD', 'USER']);
assert.deepEqual(Object.keys(RESOLVER_FAMILY.options).sort(), ['', 'ACCEPTED_PAYLOAD_SIZE', 'HOLD_VALID']);

test('fuzz: SERVICE_* variables', (t) => runFamily(t, envFamily('SERVICE_*', serviceValue)));
test('fuzz: RESOLVER_* variables', (t) => runFamily(t, envFamily('RESOLVER_*', resolverValue)));
test('fuzz: PROGRAM_* variables', (t) => runFamily(t, envFamily('PROGRAM_*', programValue)));
test('fuzz: STATS_* variables', (t) => runFamily(t, envFamily('STATS_*', plainFamily(/^STATS_/))));
test('fuzz: HAPROXY_* variables', (t) => runFamily(t, envFamily('HAPROXY_*', plainFamily(/^HAPROXY[_-]/))));
test('fuzz: PILOT_* variables', (t) => runFamily(t, envFamily('PILOT_*', plainFamily(/^PILOT_/))));
