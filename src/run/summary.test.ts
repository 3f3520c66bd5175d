import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig } from '../config/load.js';
import { startSummary } from './summary.js';

const config = (env: Record<string, string>) => loadConfig({ env: { PILOT_RUN_DIR: '/run/p', ...env }, readFile: () => '', fileExists: () => false });
const CFG = 'global\n    maxconn 10\nfrontend stats\n    bind :1936\nlisten api\n    bind 127.0.0.1:8081\nfrontend demo\n    bind :8080\n    bind [::1]:8443\nbackend b\n    server s 1.2.3.4:80\n';

test('the start line: frontends by name, stats URL and user, the generated password file, Prometheus, control server, run dir', () => {
  const s = startSummary(CFG, { config: config({}), hasPrometheus: true }, '/run/p/stats-password', [{ owner: 'PILOT_CONTROL_ADDR', host: '127.0.0.1', port: 7778 }]);
  assert.equal(
    s.message,
    'started: HAProxy listens on :1936 (stats), 127.0.0.1:8081 (api), :8080 [::1]:8443 (demo); ' +
      'stats page http://<host>:1936/haproxy?stats (user admin, password generated, in /run/p/stats-password); ' +
      'Prometheus http://<host>:1936/metrics (no credentials); ' +
      'control http://127.0.0.1:7778 (/health /ready /status /metrics); running config /run/p/haproxy.cfg',
  );
  assert.deepEqual(s.fields['frontends'], [{ name: 'stats', binds: [':1936'] }, { name: 'api', binds: ['127.0.0.1:8081'] }, { name: 'demo', binds: [':8080', '[::1]:8443'] }]);
});

test('the start line: a given password, Prometheus behind the credentials, no stats page', () => {
  const given = startSummary(CFG, { config: config({ STATS_PASSWORD: 'pw', STATS_PROMETHEUS_AUTH: 'basic' }), hasPrometheus: true }, undefined, []);
  assert.match(given.message, /\(user admin, password given in STATS_PASSWORD or STATS_PASSWORD_FILE\); Prometheus http:\/\/<host>:1936\/metrics \(the stats credentials\)/);
  const none = startSummary('global\n', { config: config({ STATS_PORT: '0' }), hasPrometheus: true }, undefined, []);
  assert.equal(none.message, 'started: HAProxy listens on nothing; no stats page; running config /run/p/haproxy.cfg');
});
