import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterServerState } from './server-state.js';

// `show servers state` as HAProxy 2.6.12 prints it (two servers of backend myapp).
const STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 myapp 1 one 10.0.0.1 2 1 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0
3 myapp 2 two 10.0.0.2 2 0 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0
3 myapp 3 web 10.0.0.7 2 0 1 1 12 6 3 4 6 0 0 0 web.example - 0 0 - - 0
`;

test('a server whose address or port changed in the new config loses its saved state', () => {
  const cfg = `backend myapp\n    server one 10.0.0.1:8080 check\n    server two 10.0.0.9:8080 check\n    server web web.example:80 check\n`;
  const kept = filterServerState(STATE, cfg).split('\n');
  assert.ok(kept.some((l) => l.startsWith('3 myapp 1 one ')), 'unchanged server keeps its state (maint)');
  assert.ok(!kept.some((l) => l.startsWith('3 myapp 2 two ')), 'moved server does not get its old address back');
  assert.ok(kept.some((l) => l.startsWith('3 myapp 3 web ')), 'a DNS-named server keeps its resolved address');
  assert.equal(kept[0], '1');
});

test('servers gone from the config and a changed port are dropped', () => {
  const cfg = `listen myapp\n    bind :80\n    server one 10.0.0.1:9090\n`;
  const kept = filterServerState(STATE, cfg);
  assert.ok(!/ one | two /.test(kept.split('\n').slice(2).join('\n')));
});

test('sections are found by keyword, indented or not, and comments and quotes follow HAProxy rules', () => {
  const cfg = `backend myapp\nserver one 10.0.0.1:8080 check # a comment with backend x\n  server two "10.0.0.2:8080"\nfrontend fe\n  bind :80\n`;
  const kept = filterServerState(STATE, cfg).split('\n');
  assert.ok(kept.some((l) => l.startsWith('3 myapp 1 one ')));
  assert.ok(kept.some((l) => l.startsWith('3 myapp 2 two ')));
});

test('a server whose maint, drain or weight the new config changes, or that the running config lost, takes the new config (HAProxy would restore the runtime state)', () => {
  // `one` was put in maint at run time (the file mirrors it: `disabled`), `two` drained (`weight 0`).
  const running = `backend myapp\n    server one 10.0.0.1:8080 check disabled\n    server two 10.0.0.2:8080 check weight 0\n    server web web.example:80 check\n`;
  const state = `${STATE}3 myapp 4 gone 10.0.0.4 2 1 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0\n`;
  const ready = `backend myapp\n    server one 10.0.0.1:8080 check\n    server two 10.0.0.2:8080 check\n    server web web.example:80 check\n    server gone 10.0.0.4:8080 check\n`;
  const kept = filterServerState(state, ready, running).split('\n');
  assert.ok(!kept.some((l) => / myapp \d (one|two|gone) /.test(l)), 'maint, drain and a lingering server do not come back');
  assert.ok(kept.some((l) => l.startsWith('3 myapp 3 web ')), 'an unchanged server keeps its state');

  const same = `backend myapp\n    server one 10.0.0.1:8080 check disabled\n    server two 10.0.0.2:8080 check weight 0\n`;
  const unchanged = filterServerState(STATE, same, running).split('\n');
  assert.ok(unchanged.some((l) => l.startsWith('3 myapp 1 one ')) && unchanged.some((l) => l.startsWith('3 myapp 2 two ')), 'still in maint and drain: the saved state stays');
  assert.ok(filterServerState(STATE, ready).split('\n').some((l) => l.startsWith('3 myapp 1 one ')), 'without a running config, as before');
});
