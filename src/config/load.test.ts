import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type LoadConfigDeps } from './load.js';
import { isPilotError } from '../errors.js';
import { settingsOf } from '../sources/registry.js';
import type { KvSourceSettings } from '../sources/kv/kind.js';
import type { EtcdSourceSettings } from '../sources/etcd/kind.js';
import type { PilotConfig } from './types.js';

const kvOf = (c: PilotConfig) => settingsOf<KvSourceSettings>(c.sources, 'kv');
const etcdOf = (c: PilotConfig) => settingsOf<EtcdSourceSettings>(c.sources, 'etcd');

const load = (env: Record<string, string>, files: Record<string, string> = {}) =>
  loadConfig({
    env,
    readFile: (p) => {
      if (!(p in files)) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return files[p]!;
    },
    fileExists: (p) => p in files,
  } satisfies LoadConfigDeps);

/** The E_CONFIG error lines of a failing load. */
function errorsOf(env: Record<string, string>, files: Record<string, string> = {}): string[] {
  try {
    load(env, files);
  } catch (err) {
    assert.ok(isPilotError(err, 'E_CONFIG'), `expected E_CONFIG, got ${String(err)}`);
    return err.message.split('\n');
  }
  assert.fail('expected loadConfig to fail');
}

test('built-in defaults', () => {
  const c = load({});
  assert.equal(c.log.level, 'info');
  assert.equal(c.haproxy.runDir, '/run/haproxy-pilot');
  assert.equal(c.haproxy.masterSocket, '/run/haproxy-pilot/master.sock');
  assert.equal(c.haproxy.stopTimeoutMs, 8000);
  assert.equal(c.haproxy.stopDelayMs, 0);
  assert.deepEqual(c.control, { host: '127.0.0.1', port: 7778 });
  assert.deepEqual(c.apply, { quietMinMs: 200, quietMaxMs: 2000 });
  assert.equal(c.stats.port, 1936);
  assert.equal(c.stats.uri, '/haproxy?stats');
  assert.equal(c.stats.auth, 'basic');
  assert.equal(c.stats.password, undefined, 'never a built-in password');
  assert.equal(c.global.serverStateFile, true);
  assert.equal(c.defaults.idleCloseOnResponse, true);
  assert.deepEqual(c.sources, { staleAfterMs: 30000, configured: [] });
  assert.deepEqual(c.demo, { port: 8080 }, 'auto demo when nothing is configured');
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.stats) && Object.isFrozen(c.services));
});

test('one bad value: the message names the variable and the value', () => {
  assert.deepEqual(errorsOf({ PILOT_STOP_TIMEOUT: 'abc' }), ['PILOT_STOP_TIMEOUT: "abc" is not a duration (e.g. 8s, 500ms)']);
});

test('all errors are reported together', () => {
  const lines = errorsOf({ PILOT_STOP_TIMEOUT: '5', STATS_PORT: '70000', PILOT_LOG_FORMAT: 'xml', SERVICE_A_BIND: '1.2.3.4:80' });
  assert.equal(lines.length, 4, lines.join('\n'));
  assert.ok(lines.some((l) => l.startsWith('PILOT_STOP_TIMEOUT: "5"')));
  assert.ok(lines.some((l) => l.startsWith('STATS_PORT: "70000"')));
  assert.ok(lines.some((l) => l.startsWith('PILOT_LOG_FORMAT: "xml" is not one of json, pretty')));
  assert.ok(lines.some((l) => l.startsWith('SERVICE_A_SERVERS: set either')));
});

test('durations, booleans and control off', () => {
  const c = load({ PILOT_STOP_DELAY: '1.5s', PILOT_QUIET_MIN: '50ms', PILOT_QUIET_MAX: '1m', HAPROXY_SERVER_STATE_FILE: 'off', PILOT_CONTROL_ADDR: 'off' });
  assert.equal(c.haproxy.stopDelayMs, 1500);
  assert.equal(c.apply.quietMaxMs, 60000);
  assert.equal(c.global.serverStateFile, false);
  assert.equal(c.control.disabled, true);
  assert.deepEqual(errorsOf({ PILOT_QUIET_MIN: '5s', PILOT_QUIET_MAX: '1s' }), ['PILOT_QUIET_MIN: 5000ms is longer than PILOT_QUIET_MAX (1000ms)']);
});

test('durations longer than a timer holds (2^31-1 ms, 24.8 days) are rejected naming the variable', () => {
  const tooLong = (name: string) => `${name}: "30d" is longer than 24.8 days (2147483647 ms), the longest a timer can hold`;
  assert.deepEqual(errorsOf({ PILOT_STOP_TIMEOUT: '30d' }), [tooLong('PILOT_STOP_TIMEOUT')]);
  assert.deepEqual(errorsOf({ KV_URL: 'http://kv:8500', KV_INTERVAL: '30d' }), [tooLong('KV_INTERVAL')]);
  assert.deepEqual(errorsOf({ PILOT_QUIET_MAX: '30d' }), [tooLong('PILOT_QUIET_MAX')]);
  assert.deepEqual(errorsOf({ HAPROXY_TIMEOUT_CLIENT: '30d' }), [tooLong('HAPROXY_TIMEOUT_CLIENT')]);
  assert.deepEqual(errorsOf({ PILOT_RELOAD_TIMEOUT: '597h' }), ['PILOT_RELOAD_TIMEOUT: "597h" is longer than 24.8 days (2147483647 ms), the longest a timer can hold']);
  const c = load({ PILOT_QUIET_MIN: '24d', PILOT_QUIET_MAX: '24d', PILOT_STOP_TIMEOUT: '2147483s' });
  assert.equal(c.apply.quietMinMs, 24 * 86_400_000);
  assert.equal(c.haproxy.stopTimeoutMs, 2_147_483_000);
});

test('enum and boolean values with surrounding whitespace are rejected, not trimmed into a choice', () => {
  assert.deepEqual(errorsOf({ STATS_AUTH: ' none ' }), ['STATS_AUTH: " none " is not one of basic, none (surrounding whitespace is not trimmed)']);
  assert.deepEqual(errorsOf({ STATS_AUTH: 'none\n' }), ['STATS_AUTH: "none\\n" is not one of basic, none (surrounding whitespace is not trimmed)']);
  assert.deepEqual(errorsOf({ SERVICE_A_BIND: ':8081', SERVICE_A_SERVERS: 'a:1', SERVICE_A_SSL: 'on', SERVICE_A_SSL_VERIFY: ' off' }), [
    'SERVICE_A_SSL_VERIFY: " off" is not a boolean (1/0, true/false, yes/no, on/off) (surrounding whitespace is not trimmed)',
  ]);
  assert.equal(load({ STATS_AUTH: 'none' }).stats.auth, 'none');
  assert.equal(load({ HAPROXY_SERVER_STATE_FILE: 'OFF' }).global.serverStateFile, false);
});

const limits = (hard: number | 'unlimited') =>
  ({ '/proc/self/limits': `Limit                     Soft Limit           Hard Limit           Units     \nMax open files            1024                 ${hard}                files     \n` });

test('HAPROXY_MAXCONN must fit the file descriptors the process can get (RLIMIT_NOFILE hard limit)', () => {
  assert.deepEqual(errorsOf({ HAPROXY_MAXCONN: '10000000' }, limits(20000)), [
    'HAPROXY_MAXCONN: 10000000 needs about 20000256 file descriptors (2 per connection and some for listeners), but the open files limit (RLIMIT_NOFILE hard limit) is 20000: lower HAPROXY_MAXCONN to 9872 or less, or raise the limit (ulimit -n, --ulimit nofile)',
  ]);
  // The default too, when the limit is low.
  assert.match(errorsOf({}, limits(4096))[0]!, /^HAPROXY_MAXCONN: 4096 needs about 8448 file descriptors .* is 4096: lower HAPROXY_MAXCONN to 1920 or less/);
  assert.equal(load({ HAPROXY_MAXCONN: '9872' }, limits(20000)).global.maxconn, 9872);
  assert.equal(load({ HAPROXY_MAXCONN: '10000000' }, limits('unlimited')).global.maxconn, 10000000);
  // An operator's own haproxy.cfg sets its own maxconn: HAPROXY_MAXCONN is not used then.
  assert.equal(load({ HAPROXY_CONFIG: '/etc/h.cfg' }, limits(1024)).global.maxconn, 4096);
});

test('PILOT_STOP_DELAY must be shorter than PILOT_STOP_TIMEOUT', () => {
  const expected = (d: number, t: number) => [
    `PILOT_STOP_DELAY: ${d}ms is not shorter than PILOT_STOP_TIMEOUT (${t}ms); HAProxy would be killed before its soft-stop`,
  ];
  assert.deepEqual(errorsOf({ PILOT_STOP_DELAY: '10s' }), expected(10000, 8000));
  assert.deepEqual(errorsOf({ PILOT_STOP_DELAY: '3s', PILOT_STOP_TIMEOUT: '3s' }), expected(3000, 3000));
  assert.equal(load({ PILOT_STOP_DELAY: '2999ms', PILOT_STOP_TIMEOUT: '3s' }).haproxy.stopDelayMs, 2999);
});

test('*_FILE secrets: read the file, trim one trailing newline; both set is an error', () => {
  const files = { '/s/pw': 'occspass\n', '/s/tok1': 'tok\n', '/s/tok': 'tok\n\n', '/s/etcd': 'e\r\n' };
  const c = load({ STATS_PASSWORD_FILE: '/s/pw', KV_URL: 'http://kv:8500', KV_TOKEN_FILE: '/s/tok1', ETCD_NODE: 'etcd', ETCD_PASSWORD_FILE: '/s/etcd' }, files);
  assert.equal(c.stats.password, 'occspass');
  assert.equal(kvOf(c)?.token, 'tok');
  assert.equal(etcdOf(c)?.password, 'e');
  // Only one newline is trimmed: the second makes the token invalid, and the error does not show it.
  const lines = errorsOf({ KV_URL: 'http://kv:8500', KV_TOKEN_FILE: '/s/tok' }, files);
  assert.equal(lines.length, 1);
  assert.match(lines[0]!, /^KV_TOKEN_FILE \(\/s\/tok\): the value \(4 characters\) is not a token/);
  assert.deepEqual(errorsOf({ STATS_PASSWORD: 'a', STATS_PASSWORD_FILE: '/s/pw' }, files), ['STATS_PASSWORD: set either STATS_PASSWORD or STATS_PASSWORD_FILE, not both']);
  assert.deepEqual(errorsOf({ STATS_PASSWORD_FILE: '/s/none' }, files), ['STATS_PASSWORD_FILE: cannot read "/s/none": ENOENT']);
});

test('secrets never reach config.env', () => {
  const c = load({ STATS_PASSWORD: 'pw', OCCS_API_TOKEN: 't', KV_IP: '10.0.0.1', ETCD_NODE: 'e', ETCD_PASSWORD: 'x', FOO: 'bar' });
  assert.equal(c.env.FOO, 'bar');
  for (const k of ['STATS_PASSWORD', 'OCCS_API_TOKEN', 'ETCD_PASSWORD']) assert.equal(k in c.env, false, k);
});

test('seed 002 variables: KV_IP, KV_PORT, OCCS_API_TOKEN, OCCS_BACKEND_KEY', () => {
  const c = load({ KV_IP: '172.17.0.1', KV_PORT: '9109', OCCS_API_TOKEN: 'secret-token', OCCS_BACKEND_KEY: 'apps/myapp/containers/' });
  assert.deepEqual(kvOf(c), { url: 'http://172.17.0.1:9109', token: 'secret-token', prefix: 'apps/myapp/containers', intervalMs: 5000, watch: false, timeoutMs: 10000, layout: 'containers' });
  assert.equal(c.demo, undefined, 'no demo once a source is configured');
  assert.deepEqual(errorsOf({ KV_URL: 'http://a', KV_IP: 'b' }), ['KV_URL: set either KV_URL or KV_IP (+ KV_PORT), not both']);
  assert.equal(kvOf(load({ KV_URL: 'http://a:1', KV_TOKEN: 'mine', OCCS_API_TOKEN: 'theirs' }))?.token, 'mine');
});

test('seed 001 variables: ETCD_NODE and the literal HAPROXY-ID', () => {
  const c = load({ ETCD_NODE: 'etcd.local', 'HAPROXY-ID': 'haproxy-1' });
  assert.deepEqual(etcdOf(c), { endpoints: ['http://etcd.local:2379'], prefix: '/haproxy-haproxy-1', haproxyId: 'haproxy-1', layout: 'confd' });
  const t = load({ ETCD_ENDPOINTS: '10.0.0.1:2379,https://e2:2380', ETCD_CA: '/ca.pem', HAPROXY_ID: 'x' });
  assert.deepEqual(etcdOf(t)?.endpoints, ['https://10.0.0.1:2379', 'https://e2:2380']);
  assert.deepEqual(etcdOf(t)?.tls, { ca: '/ca.pem' });
  assert.equal(etcdOf(load({ ETCD_NODE: 'e', ETCD_PREFIX: '/pilot/' }))?.prefix, '/pilot');
});

test('PROGRAM_<NAME>: command parsed without a shell; _RESTART is an option only when PROGRAM_<NAME> exists', () => {
  const c = load({
    PROGRAM_WEB: `/usr/bin/python3 -m http.server 8081`,
    PROGRAM_WEB_RESTART: 'always',
    PROGRAM_WEB_USER: 'nobody',
    PROGRAM_SYNC_RESTART: 'sleep 5', // no PROGRAM_SYNC: this is a program named sync_restart
    PROGRAM_ECHO: `echo a\\ b "$HOME" 'c d' ;`,
  });
  assert.deepEqual(c.programs.map((p) => [p.name, p.command, p.restart]), [
    ['echo', ['echo', 'a b', '$HOME', 'c d', ';'], 'on-failure'],
    ['sync_restart', ['sleep', '5'], 'on-failure'],
    ['web', ['/usr/bin/python3', '-m', 'http.server', '8081'], 'always'],
  ]);
  assert.equal(c.programs[2]!.user, 'nobody');
  assert.equal(c.programs[2]!.origin, 'env PROGRAM_WEB');
  assert.deepEqual(errorsOf({ PROGRAM_WEB: 'x', PROGRAM_WEB_RESTART: 'sometimes' }), ['PROGRAM_WEB_RESTART: "sometimes" is not one of on-failure, always, never']);
});

test('RESOLVER_<NAME>: ip:port list, aws, resolv.conf; options', () => {
  const c = load({ RESOLVER_AWS: 'aws', RESOLVER_AWS_HOLD_VALID: '60s', RESOLVER_LOCAL: 'resolv.conf', RESOLVER_DC: '10.0.0.2:53,10.0.0.3:5353', RESOLVER_DC_ACCEPTED_PAYLOAD_SIZE: '8192' });
  assert.deepEqual(c.resolvers, [
    { name: 'aws', nameservers: [{ host: '169.254.169.253', port: 53 }], parseResolvConf: false, holdValidMs: 60000 },
    { name: 'dc', nameservers: [{ host: '10.0.0.2', port: 53 }, { host: '10.0.0.3', port: 5353 }], parseResolvConf: false, acceptedPayloadSize: 8192 },
    { name: 'local', nameservers: [], parseResolvConf: true },
  ]);
});

test('SERVICE_<NAME>_*: seed 003 myservice from the environment alone', () => {
  const c = load({
    RESOLVER_AWS: 'aws',
    SERVICE_MYSERVICE_BIND: '127.0.0.1:8081',
    SERVICE_MYSERVICE_DNS: 'api.example.com:443',
    SERVICE_MYSERVICE_RESOLVERS: 'aws',
    SERVICE_MYSERVICE_SSL: '1',
    SERVICE_MYSERVICE_SSL_VERIFY: '0',
    SERVICE_MYSERVICE_CHECK: '1',
    SERVICE_MYSERVICE_HOST_HEADER: 'api.example.com',
    SERVICE_NAME: 'unrelated platform variable',
  });
  assert.deepEqual(c.services, [{
    name: 'myservice', mode: 'http', bind: { address: '127.0.0.1', port: 8081 }, servers: [],
    dns: { name: 'api.example.com', port: 443, resolvers: 'aws', slots: 1, preferIpv4: true },
    ssl: true, sslVerify: false, check: true, hostHeader: 'api.example.com', balance: 'roundrobin', origin: 'env SERVICE_MYSERVICE',
    bindWhere: 'SERVICE_MYSERVICE_BIND',
  }]);
});

test('SERVICE: implicit resolv.conf resolvers, unknown resolvers, unknown option, tcp-only checks', () => {
  const c = load({ SERVICE_X_BIND: '9000', SERVICE_X_DNS: 'x.internal:80' });
  assert.deepEqual(c.resolvers, [{ name: 'system', nameservers: [], parseResolvConf: true }]);
  assert.equal(c.services[0]!.dns?.resolvers, 'system');
  assert.deepEqual(errorsOf({ SERVICE_X_BIND: '9000', SERVICE_X_DNS: 'x:80', SERVICE_X_RESOLVERS: 'aws' }), ['SERVICE_X_RESOLVERS: resolvers "aws" is not defined (e.g. RESOLVER_AWS=aws)']);
  assert.match(errorsOf({ SERVICE_X_BIND: '9000', SERVICE_X_SERVERS: 'a:1', SERVICE_X_CHEKC: '1' })[0]!, /^SERVICE_X_CHEKC: unknown option of SERVICE_X \(did you mean SERVICE_X_CHECK\? known: BIND, MODE/);
  assert.deepEqual(errorsOf({ SERVICE_X_BIND: '9000', SERVICE_X_SERVERS: 'a:1', SERVICE_X_MODE: 'tcp', SERVICE_X_HOST_HEADER: 'h' }), ['SERVICE_X_HOST_HEADER: needs SERVICE_X_MODE=http']);
  assert.deepEqual(errorsOf({ SERVICE_X_SERVERS: 'a:1' }), ['SERVICE_X_BIND: required (e.g. 127.0.0.1:8081)']);
});

const YAML = `# operator file
log:
  level: debug
pilot:
  stop_timeout: 20s
stats:
  port: 8404
  user: ops
  password_file: /s/pw
haproxy:
  global:
    - nbthread 2
    - tune.bufsize 32768
  defaults:
    - retries 3
services:
  web:
    bind: ":8080"
    servers: [10.0.0.1:80, 10.0.0.2:80]
    check_path: /health
programs:
  app:
    command: [/usr/bin/node, server.js, --port, "3000"]
    restart: always
resolvers:
  aws:
    nameservers: aws
    hold_valid: 30s
`;

test('yaml layer: nested keys, raw lines, env wins over yaml', () => {
  const files = { '/etc/haproxy-pilot/pilot.yaml': YAML, '/s/pw': 'pw\n' };
  const c = load({ PILOT_STOP_TIMEOUT: '3s', SERVICE_WEB_BALANCE: 'leastconn' }, files);
  assert.equal(c.log.level, 'debug');
  assert.equal(c.haproxy.stopTimeoutMs, 3000, 'env wins');
  assert.equal(c.stats.port, 8404);
  assert.equal(c.stats.user, 'ops');
  assert.equal(c.stats.password, 'pw');
  assert.deepEqual(c.global.extraGlobal, ['nbthread 2', 'tune.bufsize 32768']);
  assert.deepEqual(c.defaults.extraDefaults, ['retries 3']);
  assert.equal(c.services[0]!.balance, 'leastconn', 'env option merges into a yaml service');
  assert.deepEqual(c.services[0]!.servers, [{ host: '10.0.0.1', port: 80 }, { host: '10.0.0.2', port: 80 }]);
  assert.equal(c.services[0]!.check, true);
  assert.equal(c.services[0]!.origin, '/etc/haproxy-pilot/pilot.yaml:17 services.web + env SERVICE_WEB');
  assert.deepEqual(c.programs[0]!.command, ['/usr/bin/node', 'server.js', '--port', '3000']);
  assert.equal(c.resolvers[0]!.holdValidMs, 30000);
});

test('yaml errors carry file:line and the yaml path', () => {
  const f = '/p.yaml';
  assert.deepEqual(errorsOf({ PILOT_CONFIG: f }, { [f]: 'stats:\n  port: abc\n  prot: 1\n' }), [
    '/p.yaml:2 stats.port: "abc" is not a port number (0..65535)',
    '/p.yaml:3 stats.prot: unknown setting',
  ]);
  const syntax = errorsOf({ PILOT_CONFIG: f }, { [f]: 'stats:\n  port: [1\nlog: x\n' });
  assert.match(syntax[0]!, /^\/p\.yaml:\d+: /);
  assert.deepEqual(errorsOf({ PILOT_CONFIG: f }, { [f]: 'haproxy:\n  global:\n    - "nbthread 2\\nmaxconn 1"\n' }), [
    '/p.yaml:3 haproxy.global[0]: "nbthread 2\\nmaxconn 1" is not one line of printable text (at most 2048 characters)',
  ]);
  assert.deepEqual(errorsOf({ PILOT_CONFIG: '/missing.yaml' }), ['PILOT_CONFIG: "/missing.yaml" does not exist']);
});

test("ProxyMgr's proxymgr.yml works as pilot.yaml: service_config is the ZooKeeper source; file and socket paths are noted", () => {
  const yaml = [
    'haproxy:',
    '  config_path: /etc/haproxy/haproxy.cfg',
    '  socket_path: /var/run/haproxy/stats.sock',
    '  global:',
    '    - maxconn 1000',
    'service_config:',
    '  type: zookeeper',
    '  servers: localhost:2181',
    '  path: /service_config',
  ].join('\n');
  const c = load({ PILOT_CONFIG: '/etc/proxymgr.yml' }, { '/etc/proxymgr.yml': yaml });
  const zk = settingsOf<{ connectString: string; path: string }>(c.sources, 'zookeeper');
  assert.equal(zk?.connectString, 'localhost:2181');
  assert.equal(zk?.path, '/service_config');
  assert.deepEqual(c.global.extraGlobal, ['maxconn 1000']);
  assert.equal(c.notes.length, 2);
  assert.match(c.notes.join('\n'), /proxymgr\.yml:2 haproxy\.config_path \(ProxyMgr\) is ignored/);
  assert.deepEqual(errorsOf({ PILOT_CONFIG: '/etc/p.yml' }, { '/etc/p.yml': 'service_config:\n  type: etcd\n  servers: a:1\n  path: /x\n' }), ['/etc/p.yml:2 service_config.type: "etcd" is not zookeeper (the only service_config type ProxyMgr has)']);
});

// Regression cases found by the fuzz suite (e2e/fuzz-env.test.ts, docs/fuzzing.md).
test('a resolver nameserver must be an IP address: HAProxy refuses a name (fuzz regression)', () => {
  for (const value of ['a:1', 'dns.example.com:53', '10.0.0.2:53,ns.local:53']) {
    const lines = errorsOf({ RESOLVER_AWS: value });
    assert.ok(lines.some((l) => l.startsWith('RESOLVER_AWS (nameserver ') && /is not an IP address/.test(l)), `${value}: ${lines.join(' | ')}`);
  }
  assert.deepEqual(load({ RESOLVER_AWS: '10.0.0.2:53,[::1]:5353,aws,resolv.conf' }).resolvers[0]!.nameservers.map((n) => n.host), ['10.0.0.2', '::1', '169.254.169.253']);
});

test('a variable name that is not one visible word is shown quoted: each problem is one line (fuzz regression)', () => {
  for (const env of <Record<string, string>[]>[{ 'RESOLVER_\n    server evil 6.6.6.6:1': 'aws' }, { 'SERVICE_ _BIND': '*:1', 'SERVICE_ _DNS': '0.0.0.0:1' }, { 'PROGRAM_\n    x': '', 'PROGRAM_\n    x_START_ON_RELOAD': '1' }, { 'SERVICE_\n    x_BIND': 'a.aa:1', 'SERVICE_\n    x_SERVERS': 'A.AA:1', 'SERVICE_\n    x_BIND_X': '1' }]) {
    const lines = errorsOf(env);
    assert.ok(lines.length > 0);
    for (const l of lines) assert.match(l, /^"(RESOLVER|SERVICE|PROGRAM)_[^"]*"/, JSON.stringify(l));
  }
});

test('a service binds an IP address: HAProxy refuses a name it cannot resolve at parse time (fuzz regression)', () => {
  for (const bind of ['sq5b5:12127', 'localhost:8081', 'web.example.org:80']) {
    const lines = errorsOf({ SERVICE_WEB_BIND: bind, SERVICE_WEB_SERVERS: '10.0.0.1:80' });
    assert.ok(lines.some((l) => l.startsWith('SERVICE_WEB_BIND:') && /is not an IP address/.test(l)), `${bind}: ${lines.join(' | ')}`);
  }
  for (const [bind, address] of [['127.0.0.1:8081', '127.0.0.1'], ['[::1]:8081', '::1'], [':8081', ''], ['*:8081', ''], ['8081', '']] as const) {
    assert.equal(load({ SERVICE_WEB_BIND: bind, SERVICE_WEB_SERVERS: '10.0.0.1:80' }).services[0]!.bind.address, address, bind);
  }
});

test('misspelt variables of our prefixes are warned about with the closest known name', () => {
  const c = load({
    PILOT_LOGLEVEL: 'debug',
    HAPROXY_MAXCON: '100',
    STATS_PASWORD: 'secret',
    KV_TOKN: 'x',
    ETCD_ENDPOINT: 'http://e:2379',
    ZK_SERVER: 'zk:2181',
    SIDECAR_STATEURL: 'http://s/state.json',
    DISCOVERY_FIEL: '/d.yaml',
    PILOT_NOSUCHTHING: '1',
  });
  const w = c.warnings.join('\n');
  for (const [typo, known] of [
    ['PILOT_LOGLEVEL', 'PILOT_LOG_LEVEL'],
    ['HAPROXY_MAXCON', 'HAPROXY_MAXCONN'],
    ['STATS_PASWORD', 'STATS_PASSWORD'],
    ['KV_TOKN', 'KV_TOKEN'],
    ['ETCD_ENDPOINT', 'ETCD_ENDPOINTS'],
    ['ZK_SERVER', 'ZK_SERVERS'],
    ['SIDECAR_STATEURL', 'SIDECAR_STATE_URL'],
    ['DISCOVERY_FIEL', 'DISCOVERY_FILE'],
  ]) {
    assert.match(w, new RegExp(`${typo} .*did you mean ${known}\\?`), typo);
  }
  assert.match(w, /PILOT_NOSUCHTHING is not a haproxy-pilot variable/);
  assert.equal(c.warnings.length, 9, w);
});

test("HAProxy's, the official image's and haproxy-api's own HAPROXY_ variables are not warned about", () => {
  const c = load({
    HAPROXY_CFGFILES: '/x.cfg', HAPROXY_LOCALPEER: 'h', HAPROXY_MWORKER: '1', HAPROXY_STARTUP_VERSION: '2.6', HAPROXY_MASTER_CLI: 'unix@/x',
    HAPROXY_CLI: 'unix@/y', HAPROXY_BRANCH: '2.6', HAPROXY_HTTP_LOG_FMT: 'x', HAPROXY_TCP_LOG_FMT: 'x', HAPROXY_HTTPS_LOG_FMT: 'x',
    HAPROXY_VERSION: '3.2.0', HAPROXY_URL: 'https://x', HAPROXY_SHA256: 'abc', HAPROXY_API_BIND: 'x', HAPROXY_API_SIDECAR_URL: 'x',
    KV_SERVICE_HOST: '10.0.0.1', KV_SERVICE_PORT: '80', STATS_SERVICE_HOST: '10.0.0.1', STATS_PORT_1936_TCP: 'tcp://10.0.0.1:1936',
  });
  assert.deepEqual(c.warnings, []);
});

test('a misspelt option of a program, resolver or service is warned about', () => {
  const c = load({ PROGRAM_WEB: '/bin/true', PROGRAM_WEB_RESTRAT: 'always', SERVICE_API_BNID: ':8081' });
  const w = c.warnings.join('\n');
  assert.match(w, /PROGRAM_WEB_RESTRAT: .*did you mean PROGRAM_WEB_RESTART\?/);
  assert.match(w, /SERVICE_API_BNID .*did you mean SERVICE_API_BIND\?/);
  // A typo that also makes the configuration invalid: the error carries the hint.
  const errors = errorsOf({ RESOLVER_DNS: 'aws', RESOLVER_DNS_HOLD_VALDI: '10s' });
  assert.ok(errors.some((l) => /RESOLVER_DNS_HOLD_VALDI: .*did you mean RESOLVER_DNS_HOLD_VALID\?/.test(l)), errors.join('\n'));
  // Correct names are not warned about.
  assert.deepEqual(load({ PROGRAM_WEB: '/bin/true', PROGRAM_WEB_RESTART: 'always', SERVICE_API_BIND: ':8081', SERVICE_API_SERVERS: '127.0.0.1:1' }).warnings, []);
});

test('PILOT_PROGRAM_FAILURES and STATS_PROMETHEUS_AUTH', () => {
  assert.equal(load({}).health.programFailures, 5);
  assert.equal(load({ PILOT_PROGRAM_FAILURES: '2' }).health.programFailures, 2);
  assert.equal(load({}).stats.prometheusAuth, 'none');
  assert.equal(load({ STATS_PROMETHEUS_AUTH: 'basic' }).stats.prometheusAuth, 'basic');
  assert.deepEqual(errorsOf({ STATS_PROMETHEUS_AUTH: 'basic', STATS_AUTH: 'none' }), ['STATS_PROMETHEUS_AUTH: basic needs the stats page\'s credentials (STATS_AUTH=basic and a STATS_PORT)']);
});

test("the official image's config path runs when nothing else says what to run", () => {
  const official = '/usr/local/etc/haproxy/haproxy.cfg';
  const c = load({}, { [official]: 'global\n' });
  assert.equal(c.haproxy.userConfig, official);
  assert.equal(c.demo, undefined);
  assert.match(c.notes.join('\n'), /running \/usr\/local\/etc\/haproxy\/haproxy\.cfg/);
  // Anything that says what to run wins.
  assert.equal(load({ HAPROXY_CONFIG: '/etc/x.cfg' }, { [official]: '' }).haproxy.userConfig, '/etc/x.cfg');
  assert.equal(load({ SERVICE_A_BIND: ':81', SERVICE_A_SERVERS: '127.0.0.1:1' }, { [official]: '' }).haproxy.userConfig, undefined);
  assert.equal(load({ PILOT_DEMO: 'on' }, { [official]: '' }).haproxy.userConfig, undefined);
  assert.equal(load({ PILOT_TEMPLATES: '/t' }, { [official]: '', '/t/haproxy.cfg.hbs': '' }).haproxy.userConfig, undefined);
  // The image's empty template directory does not count.
  assert.equal(load({ PILOT_TEMPLATES: '/t' }, { [official]: '' }).haproxy.userConfig, official);
});

test('an unwritable default run directory falls back, and says so; an explicit one does not', () => {
  const deps = (env: Record<string, string>) => ({ env, readFile: () => '', fileExists: () => false, runDirFallback: () => '/tmp/haproxy-pilot-1000' });
  const c = loadConfig(deps({}));
  assert.equal(c.haproxy.runDir, '/tmp/haproxy-pilot-1000');
  assert.equal(c.haproxy.masterSocket, '/tmp/haproxy-pilot-1000/master.sock');
  assert.equal(c.stats.passwordFile, '/tmp/haproxy-pilot-1000/stats-password');
  assert.match(c.warnings.join('\n'), /PILOT_RUN_DIR: \/run\/haproxy-pilot is not writable .* using \/tmp\/haproxy-pilot-1000/);
  assert.equal(loadConfig(deps({ PILOT_RUN_DIR: '/srv/run' })).haproxy.runDir, '/srv/run');
});

test('a service on the stats port is refused naming both variables', async () => {
  const { reservedBy } = await import('../state/reserved.js');
  const c = load({ SERVICE_WEB_BIND: ':1936', SERVICE_WEB_SERVERS: '127.0.0.1:9001' });
  assert.throws(() => reservedBy(c, undefined), (err: Error) => isPilotError(err, 'E_CONFIG') && /port 1936 is used twice: by the stats page \(STATS_PORT\) and by service web \(SERVICE_WEB_BIND\)/.test(err.message));
  const y = load({ PILOT_CONFIG: '/p.yaml' }, { '/p.yaml': 'services:\n  web:\n    bind: ":1936"\n    servers: ["127.0.0.1:1"]\n' });
  assert.throws(() => reservedBy(y, undefined), /by service web \(\/p\.yaml:3 services\.web\.bind\)/);
});

test("proxymgr.yml's global lines that fight the pilot running HAProxy are left out with a note", () => {
  const yaml = [
    'haproxy:',
    '  global:',
    '    - maxconn 4096',
    '    - daemon',
    '    - pidfile /var/run/haproxy.pid',
    '    - stats socket /var/lib/haproxy.sock level admin',
    '    - nbproc 2',
    '    - master-worker',
    '    - log 127.0.0.1 local0',
    'service_config:',
    '  type: zookeeper',
    '  servers: localhost:2181',
    '  path: /service_config',
  ].join('\n');
  const c = load({ PILOT_CONFIG: '/etc/proxymgr.yml' }, { '/etc/proxymgr.yml': yaml });
  assert.deepEqual(c.global.extraGlobal, ['maxconn 4096', 'log 127.0.0.1 local0']);
  assert.equal(c.notes.filter((n) => /^\/etc\/proxymgr\.yml:3 haproxy\.global: ".*" \(ProxyMgr\) is left out/.test(n)).length, 5);
  // A pilot.yaml of our own keeps every line it gives (its author asked for them).
  const own = load({ PILOT_CONFIG: '/p.yaml' }, { '/p.yaml': 'haproxy:\n  global:\n    - stats socket /run/haproxy-pilot/admin.sock\n' });
  assert.deepEqual(own.global.extraGlobal, ['stats socket /run/haproxy-pilot/admin.sock']);
});

test('PILOT_RUN_DIR: a comma or a path too long for HAProxy\'s sockets is refused, naming the variable', () => {
  const load = (dir: string) => loadConfig({ env: { PILOT_RUN_DIR: dir }, readFile: () => '', fileExists: () => false });
  assert.equal(load(`/${'r'.repeat(84)}`).haproxy.workerSocket, `/${'r'.repeat(84)}/worker.sock`);
  for (const dir of ['/run/a=b,c@d+e', `/${'r'.repeat(85)}`]) {
    assert.throws(() => load(dir), (err) => {
      assert.ok(isPilotError(err, 'E_CONFIG'));
      assert.match(err.message, /^PILOT_RUN_DIR: .* is not an absolute path of 85 bytes at most, without a comma/);
      return true;
    });
  }
});
