/**
 * Golden files: one rendered haproxy.cfg per feature, compared byte for byte with
 * src/render/golden/<case>.cfg (UPDATE_GOLDEN=1 rewrites them), and each checked by the real
 * `haproxy -c` with no warning allowed. `-c` does not bind ports; it does resolve static server
 * names and read certificates, so the check runs on a copy whose /run/haproxy-pilot paths point
 * at a temp dir holding a server-state file and a self-signed certificate.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadConfig } from '../config/load.js';
import type { DiscoveredBackend } from '../state/model.js';
import { loadTemplates, renderConfig, type RenderInput } from './render.js';

const GOLDEN = fileURLToPath(new URL('../../../src/render/golden/', import.meta.url));
const RUN = '/run/haproxy-pilot';
let tmp = '';
let userTemplates = '';
let partialTemplates = '';

const SEED002_TEMPLATE = `{{> global}}

{{> defaults}}

frontend http-in
    bind :5000
    default_backend nginx_80

backend nginx_80
    balance roundrobin
    mode http
    option httpchk
    http-check send meth HEAD uri / ver HTTP/1.1 hdr Host localhost
{{#each (gets "/apps/myapp/containers/*")}}
    server {{name (base this.Key)}} {{hostport this.Value}} check
{{/each}}
`;

const GLOBAL_OVERRIDE = `global
    log stdout format raw local0 debug
    maxconn {{global.maxconn}}
    nbthread 2
    hard-stop-after {{global.hardStopAfter}}
`;

before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pilot-render-'));
  mkdirSync(join(tmp, 'run', 'certs'), { recursive: true });
  // A server-state file as `show servers state` writes it (version line): an empty one warns.
  writeFileSync(join(tmp, 'run', 'server-state'), '1\n');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=example.org',
    '-keyout', join(tmp, 'key.pem'), '-out', join(tmp, 'cert.pem')], { stdio: 'ignore' });
  writeFileSync(join(tmp, 'run', 'certs', 'example.org.pem'), readFileSync(join(tmp, 'cert.pem'), 'utf8') + readFileSync(join(tmp, 'key.pem'), 'utf8'));
  userTemplates = join(tmp, 'user');
  mkdirSync(userTemplates);
  writeFileSync(join(userTemplates, 'haproxy.cfg.hbs'), SEED002_TEMPLATE);
  partialTemplates = join(tmp, 'partial');
  mkdirSync(join(partialTemplates, 'partials'), { recursive: true });
  writeFileSync(join(partialTemplates, 'partials', 'global.hbs'), GLOBAL_OVERRIDE);
});
after(() => rmSync(tmp, { recursive: true, force: true }));

const SEED002_BACKEND: DiscoveredBackend = {
  name: 'nginx_80', mode: 'http', source: 'kv',
  servers: [{ name: 'one', host: '10.9.1.1', port: 32001 }, { name: 'two', host: '10.9.1.2', port: 32002 }],
};
const SEED001_BACKENDS: DiscoveredBackend[] = [
  { name: 'myapp', mode: 'http', servers: [], dns: [{ name: 'myapp', port: 80, slots: 4 }], route: { domain: 'example.org' }, source: 'etcd' },
  { name: 'myapi', mode: 'http', servers: [], dns: [{ name: 'myapi', port: 80, slots: 4 }], route: { pathPrefix: '/api_A' }, source: 'etcd' },
  { name: 'otherapi', mode: 'http', servers: [], dns: [{ name: 'otherapi', port: 8080, slots: 2 }], route: { domain: 'example.org', pathPrefix: '/api_B' }, source: 'etcd' },
  { name: 'galera', mode: 'tcp', servers: [], dns: [{ name: 'galera', port: 3306, slots: 3 }], route: { port: 3306 }, source: 'etcd' },
];

interface Case {
  env?: Record<string, string>;
  yaml?: string;
  input?: Partial<Omit<RenderInput, 'config'>>;
  templates?: () => string;
}

const BASE_ENV = { STATS_PASSWORD: 'test-Pass_1', PILOT_DEMO: 'off' };

const CASES: Record<string, Case> = {
  'defaults-only': { env: { STATS_PASSWORD: '', PILOT_DEMO: 'auto' }, input: { statsPassword: 'generated-Pw1' } },
  'stats-basic-seed002': { env: { STATS_USER: 'occsdemo', STATS_PASSWORD: 'occspass' }, input: { hasPrometheus: true } },
  'stats-prometheus-auth': { env: { STATS_USER: 'ops', STATS_PASSWORD: 'metrics-Pw1', STATS_PROMETHEUS_AUTH: 'basic' }, input: { hasPrometheus: true } },
  'stats-placeholder': { env: { STATS_PASSWORD: '' }, input: { statsPassword: '<generated-at-start>' } },
  'stats-none': { env: { STATS_AUTH: 'none', STATS_PASSWORD: '', STATS_PORT: '8404', STATS_URI: '/stats', STATS_PROMETHEUS: 'on' }, input: { hasPrometheus: false } },
  'tcp-defaults-no-log': {
    env: {
      STATS_PORT: '0', HAPROXY_MODE: 'tcp', HAPROXY_LOG_FORMAT: 'none', HAPROXY_SERVER_STATE_FILE: 'off', HAPROXY_HARD_STOP_AFTER: '0',
      HAPROXY_MAXCONN: '2000', HAPROXY_TIMEOUT_CLIENT: '1m', HAPROXY_TIMEOUT_HTTP_REQUEST: '1500ms',
      SERVICE_DB_BIND: ':3306', SERVICE_DB_MODE: 'tcp', SERVICE_DB_SERVERS: '10.0.0.5:3306', SERVICE_DB_CHECK: '1',
      SERVICE_WEB_BIND: ':8080', SERVICE_WEB_SERVERS: '10.0.0.6:80',
    },
  },
  'resolvers': {
    env: {
      RESOLVER_AWS: 'aws', RESOLVER_AWS_HOLD_VALID: '60s', RESOLVER_LOCAL: 'resolv.conf',
      RESOLVER_DC: '10.0.0.2:53,10.0.0.3:5353', RESOLVER_DC_ACCEPTED_PAYLOAD_SIZE: '8192', RESOLVER_DC_HOLD_VALID: '10s',
    },
  },
  'services': {
    env: {
      RESOLVER_DC: '10.0.0.2:53',
      SERVICE_STATIC_BIND: '127.0.0.1:9001', SERVICE_STATIC_SERVERS: '10.0.1.1:8080,10.0.1.2:8080,localhost:8080', SERVICE_STATIC_BALANCE: 'leastconn', SERVICE_STATIC_CHECK_PATH: '/healthz',
      SERVICE_DNS_BIND: ':9002', SERVICE_DNS_DNS: 'api.internal:8443', SERVICE_DNS_SLOTS: '3', SERVICE_DNS_CHECK: '1', SERVICE_DNS_RESOLVE_PREFER: 'ipv6',
      SERVICE_TLS_BIND: ':9003', SERVICE_TLS_SERVERS: '10.0.2.1:443', SERVICE_TLS_SSL: '1', SERVICE_TLS_HOST_HEADER: 'secure.example.com', SERVICE_TLS_CHECK_PATH: '/',
      SERVICE_MYSQL_BIND: ':3306', SERVICE_MYSQL_MODE: 'tcp', SERVICE_MYSQL_SERVERS: '10.0.3.1:3306,10.0.3.2:3306', SERVICE_MYSQL_CHECK: '1', SERVICE_MYSQL_BALANCE: 'first',
    },
  },
  'seed003-env': {
    env: {
      RESOLVER_AWS: 'aws', RESOLVER_AWS_HOLD_VALID: '60s',
      SERVICE_MYSERVICE_BIND: '127.0.0.1:8081', SERVICE_MYSERVICE_DNS: 'myservice.example.com:443', SERVICE_MYSERVICE_RESOLVERS: 'aws',
      SERVICE_MYSERVICE_SSL: '1', SERVICE_MYSERVICE_SSL_VERIFY: '0', SERVICE_MYSERVICE_CHECK: '1', SERVICE_MYSERVICE_HOST_HEADER: 'myservice.example.com',
      SERVICE_MYAPP_BIND: ':8080', SERVICE_MYAPP_SERVERS: '127.0.0.1:8082', SERVICE_MYAPP_CHECK_PATH: '/',
      PROGRAM_MYSERVER: '/usr/bin/python3 -m http.server 8082',
    },
  },
  'seed002-discovered': {
    env: { KV_IP: '172.17.0.1', KV_PORT: '9109', OCCS_API_TOKEN: 'tok', OCCS_BACKEND_KEY: 'apps/myapp/containers', STATS_USER: 'occsdemo', STATS_PASSWORD: 'occspass' },
    input: { backends: [SEED002_BACKEND, { ...SEED002_BACKEND, name: 'extra', servers: [{ name: 'a', host: '10.9.1.3', port: 80, weight: 50 }, { name: 'b', host: '10.9.1.4', port: 80, state: 'maint' }, { name: 'c', host: '10.9.1.5', port: 80, state: 'drain' }] }] },
  },
  'seed001-routes': { env: { ETCD_NODE: 'etcd', 'HAPROXY-ID': 'haproxy-1' }, input: { backends: SEED001_BACKENDS } },
  'seed001-routes-resolvers': { env: { ETCD_NODE: 'etcd', 'HAPROXY-ID': 'haproxy-1', RESOLVER_AWS: 'aws' }, input: { backends: SEED001_BACKENDS.slice(3) } },
  'certs': { env: { ETCD_NODE: 'etcd', HAPROXY_ID: 'haproxy-1' }, input: { backends: SEED001_BACKENDS.slice(0, 1), certsDir: `${RUN}/certs` } },
  'demo': { env: { PILOT_DEMO: 'auto' }, input: { demo: { port: 8080, backendPort: 8081 } } },
  'partial-override': { env: { PILOT_TEMPLATES: '/set-by-test' }, templates: () => partialTemplates },
  'user-template-seed002': {
    input: { keys: { '/apps/myapp/containers/one': '10.9.1.1:32001', '/apps/myapp/containers/two': '10.9.1.2:32002', '/apps/other/x': '1.1.1.1:1' } },
    templates: () => userTemplates,
  },
  'yaml-extras': {
    yaml: `haproxy:\n  global:\n    - nbthread 2\n    - tune.bufsize 32768\n  defaults:\n    - retries 3\n    - option redispatch\nservices:\n  web:\n    bind: ":8088"\n    servers: [10.0.0.1:80]\n    check: true\n`,
  },
};

function render(c: Case): string {
  const env: Record<string, string> = { ...BASE_ENV, ...c.env };
  const files: Record<string, string> = c.yaml ? { '/etc/haproxy-pilot/pilot.yaml': c.yaml } : {};
  const config = loadConfig({ env, readFile: (p) => files[p]!, fileExists: (p) => p in files });
  const templates = loadTemplates(c.templates?.());
  return renderConfig(templates, { config, backends: [], keys: {}, hasPrometheus: true, ...c.input });
}

function haproxyCheck(name: string, text: string): void {
  const file = join(tmp, `${name}.cfg`);
  writeFileSync(file, text.replaceAll(RUN, join(tmp, 'run')));
  const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 0, `haproxy -c rejected ${name}:\n${out}`);
  assert.doesNotMatch(out, /\[(WARNING|ALERT)\]/, `haproxy -c warned about ${name}:\n${out}`);
}

for (const [name, c] of Object.entries(CASES)) {
  test(`golden: ${name}`, () => {
    const text = render(c);
    const golden = join(GOLDEN, `${name}.cfg`);
    if (process.env.UPDATE_GOLDEN === '1') {
      mkdirSync(GOLDEN, { recursive: true });
      writeFileSync(golden, text);
    }
    assert.ok(existsSync(golden), `missing ${golden}: run with UPDATE_GOLDEN=1 and review it`);
    assert.equal(text, readFileSync(golden, 'utf8'), `${name}.cfg differs (UPDATE_GOLDEN=1 rewrites it after review)`);
    haproxyCheck(name, text);
  });
}

test('rendering is pure: the same input gives the same text', () => {
  const c = CASES['seed001-routes']!;
  assert.equal(render(c), render(c));
});
