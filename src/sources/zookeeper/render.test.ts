/**
 * ProxyMgr blobs through the whole build: layout → embedded templates → `haproxy -c`.
 *
 * - The pilot adds nothing of its own to a ZooKeeper service: no `check`, no `option httpchk`
 *   and no `http-check send` beyond what the blob says (ProxyMgr's template had none, so a
 *   service without `check` was never checked, one with `check` got a TCP check).
 * - Whatever the parsers accept, HAProxy loads: every listen line and server keyword set below
 *   that the layout lets through is rendered into one config per mode and checked by the real
 *   `haproxy -c`. One blob HAProxy refuses would fail every candidate (the running config stays,
 *   and every other change waits), so refusing it belongs in the layout.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../../config/load.js';
import { loadTemplates, renderConfig } from '../../render/render.js';
import type { DiscoveredBackend } from '../../state/model.js';
import { layoutService } from './proxymgr-layout.js';

let tmp = '';
before(() => {
  tmp = mkdtempSync(join(tmpdir(), 'pilot-zk-render-'));
  writeFileSync(join(tmp, 'server-state'), '1\n');
});
after(() => rmSync(tmp, { recursive: true, force: true }));

function render(backends: DiscoveredBackend[]): string {
  const env = { STATS_AUTH: 'none', PILOT_DEMO: 'off', ZK_SERVERS: 'zk1:2181', ZK_PATH: '/service_config', PILOT_RUN_DIR: tmp };
  const config = loadConfig({ env, readFile: () => '', fileExists: () => false });
  return renderConfig(loadTemplates(), { config, backends, keys: {}, hasPrometheus: false });
}

/** One service node with servers 10.0.0.1:8080 and 10.0.0.2:8080 → its backend (undefined: skipped). */
function service(name: string, blob: Record<string, unknown>): DiscoveredBackend | undefined {
  const children = { a: { data: JSON.stringify({ address: '10.0.0.1', port: 8080 }) }, b: { data: JSON.stringify({ address: '10.0.0.2', port: 8080 }) } };
  return layoutService({ parent: '/service_config', name, data: JSON.stringify({ type: 'zookeeper', path: `/services/${name}`, ...blob }), watcher: { children } }, { source: 'zookeeper' }).backend;
}

/** The lines of `listen <name>`, indented ones only. */
function section(cfg: string, name: string): string[] {
  const lines = cfg.split('\n');
  const start = lines.indexOf(`listen ${name}`);
  assert.ok(start >= 0, `listen ${name} in:\n${cfg}`);
  const out: string[] = [];
  for (const l of lines.slice(start + 1)) {
    if (!/^\s/.test(l)) break;
    out.push(l.trim());
  }
  return out;
}

function haproxyCheck(name: string, text: string): void {
  const file = join(tmp, `${name}.cfg`);
  writeFileSync(file, text);
  const r = spawnSync('haproxy', ['-c', '-f', file], { encoding: 'utf8' });
  assert.equal(r.status, 0, `haproxy -c rejected ${name}:\n${r.stdout}${r.stderr}`);
}

test("seed 004's README blob: its server_options on every server, no health check of the pilot's own", () => {
  const readme = service('testservice', { port: 18080, listen_options: ['mode http'], server_options: ['check inter 2000'] })!;
  const plain = service('plain', { port: 18081, listen_options: ['mode http'] })!;
  const tcp = service('db', { port: 15432 })!;
  const tuned = service('tuned', { port: 18082, listen_options: ['mode http', 'balance leastconn', 'option httpchk GET /health'], server_options: ['check inter 2000'] })!;
  const cfg = render([readme, plain, tcp, tuned]);
  assert.deepEqual(section(cfg, 'testservice'), [
    'bind :18080',
    'mode http',
    'balance roundrobin',
    'server 10.0.0.1:8080 10.0.0.1:8080 check inter 2000',
    'server 10.0.0.2:8080 10.0.0.2:8080 check inter 2000',
  ]);
  // No server_options: no check at all, as ProxyMgr rendered it (not `check` + `option httpchk HEAD /`).
  assert.deepEqual(section(cfg, 'plain'), ['bind :18081', 'mode http', 'balance roundrobin', 'server 10.0.0.1:8080 10.0.0.1:8080', 'server 10.0.0.2:8080 10.0.0.2:8080']);
  assert.deepEqual(section(cfg, 'db'), ['bind :15432', 'mode tcp', 'option tcplog', 'no option idle-close-on-response', 'balance roundrobin', 'server 10.0.0.1:8080 10.0.0.1:8080', 'server 10.0.0.2:8080 10.0.0.2:8080']);
  assert.deepEqual(section(cfg, 'tuned'), [
    'bind :18082',
    'mode http',
    'balance leastconn',
    'option httpchk GET /health',
    'server 10.0.0.1:8080 10.0.0.1:8080 check inter 2000',
    'server 10.0.0.2:8080 10.0.0.2:8080 check inter 2000',
  ]);
  haproxyCheck('readme', cfg);
});

test("the dns watcher's server-templates get the blob's server_options too, and no check of the pilot's own", () => {
  const dns = (name: string, port: number, extra: Record<string, unknown>) =>
    layoutService({ parent: '/service_config', name, data: JSON.stringify({ type: 'dns', port, backends: [{ name: 'api.example.com', port: 443, slots: 2 }], ...extra }) }, { source: 'zookeeper' }).backend!;
  const cfg = render([dns('plain', 18090, {}), dns('checked', 18091, { server_options: ['check inter 2000'] })]);
  assert.ok(section(cfg, 'plain').includes('server-template srv 2 api.example.com:443 resolvers system init-addr last,none'), cfg);
  assert.ok(section(cfg, 'checked').includes('server-template srv 2 api.example.com:443 check inter 2000 resolvers system init-addr last,none'), cfg);
  haproxyCheck('dns', cfg);
});

const LISTEN = [
  'balance leastconn', 'balance roundrobin', 'balance static-rr', 'balance first', 'balance source', 'balance random', 'balance uri',
  'balance url_param userid', 'balance hdr(X-Tenant)', 'option httpchk', 'option httpchk /health', 'option httpchk GET /health?full=1',
  'option httpchk HEAD / HTTP/1.0', 'option httplog', 'option tcplog', 'option redispatch', 'option forwardfor', 'option forwardfor if-none',
  'option dontlognull', 'option log-health-checks', 'option abortonclose', 'option allbackups', 'option http-server-close', 'option httpclose',
  'option http-keep-alive', 'option tcpka', 'option clitcpka', 'option srvtcpka', 'option tcp-check', 'option ssl-hello-chk', 'option persist',
  'timeout server 30s', 'timeout connect 500', 'timeout http-request 10s', 'timeout tunnel 1h', 'timeout client-fin 1s', 'timeout server-fin 1s',
  'timeout queue 5s', 'timeout check 2s', 'timeout http-keep-alive 1s', 'timeout client 1m', 'maxconn 2000', 'fullconn 100', 'retries 3', 'retries 0',
  'hash-type consistent djb2 avalanche', 'hash-type map-based', 'http-check expect status 200', 'http-check expect ! string maintenance',
  'http-check send meth GET uri /ready ver HTTP/1.1 hdr Host app.example.com', 'http-check disable-on-404', 'http-check send-state',
];

const SERVER = [
  'check', 'backup', 'ssl', 'check-ssl', 'ssl verify none', 'ssl verify required', 'ssl verify required ca-file @system-ca sni str(api.example.com)',
  'ssl verify none sni req.hdr(host)', 'check check-ssl verify none check-sni api.example.com check-alpn h2', 'ssl verify none alpn h2,http/1.1',
  'inter 2s fastinter 500ms downinter 10s rise 2 fall 3', 'check inter 2000', 'weight 0', 'weight 256', 'maxconn 100 maxqueue 10 minconn 5',
  'slowstart 30s', 'send-proxy', 'send-proxy-v2', 'check check-send-proxy', 'proto h2', 'proto h1', 'port 8081', 'check port 8081',
  'observe layer4 error-limit 10 on-error mark-down', 'observe layer7', 'init-addr last,libc,none', 'agent-check', 'agent-check agent-port 9999 agent-inter 5s',
  'on-marked-down shutdown-sessions', 'on-marked-up shutdown-backup-sessions', 'no-send-proxy', 'no-ssl', 'no-check-ssl', 'non-stick', 'tfo', 'allow-0rtt',
  'ssl verify none ssl-min-ver TLSv1.2 ssl-max-ver TLSv1.3', 'ssl verify none ssl-min-ver TLSv1.3 ssl-max-ver TLSv1.0', 'pool-max-conn 10 pool-purge-delay 1s',
];

for (const mode of ['http', 'tcp'] as const) {
  test(`everything the layout accepts in ${mode} mode is a config HAProxy loads`, () => {
    const backends: DiscoveredBackend[] = [];
    let port = 20000;
    for (const line of LISTEN) {
      const b = service(`l${port}`, { port: port++, listen_options: [`mode ${mode}`, line], server_options: ['check'] });
      assert.ok(b, `listen option ${line} is accepted`);
      backends.push(b);
    }
    let accepted = 0;
    for (const opts of SERVER) {
      const b = service(`s${port}`, { port: port++, listen_options: [`mode ${mode}`], server_options: [opts] });
      if (b === undefined) continue; // skipped by the layout (with a reason): fine, as long as HAProxy never sees it
      accepted++;
      backends.push(b);
    }
    assert.ok(accepted >= SERVER.length - 10, `most server keyword sets are accepted (${accepted}/${SERVER.length})`);
    haproxyCheck(`all-${mode}`, render(backends));
  });
}
