import { test } from 'node:test';
import assert from 'node:assert/strict';
import { filterServerState } from './server-state.js';

// `show servers state` as HAProxy 2.6.12 prints it (two servers of backend myapp).
const STATE = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
3 myapp 1 one 10.0.0.1 2 1 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0
3 myapp 2 two 10.0.0.2 2 0 1 1 12 6 3 4 6 0 0 0 - 8080 - 0 0 - - 0
3 myapp 3 web 10.0.0.7 2 0 1 1 12 6 3 4 6 0 0 0 web.example 80 - 0 0 - - 0
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

test('server-template slots keep their resolved addresses while the template names the same host and port; a DNS-named server renamed to another host does not', () => {
  // As 2.6.12 prints slots of `server-template srv 2-3 myapp.internal:8080` (srv2, srv3) and `srv1_1`.
  const state = `${STATE}4 tpl 1 srv2 10.1.0.2 2 0 1 1 5 6 3 4 6 0 0 0 myapp.internal 8080 - 0 0 - - 0
4 tpl 2 srv3 10.1.0.3 2 0 1 1 5 6 3 4 6 0 0 0 myapp.internal 8080 - 0 0 - - 0
4 tpl 3 srv1_1 10.1.0.9 2 0 1 1 5 6 3 4 6 0 0 0 other.internal 9000 - 0 0 - - 0
`;
  const cfg = `backend myapp\n    server web web.example:80 check\nbackend tpl\n    server-template srv 2-3 myapp.internal:8080 check resolvers dns init-addr last,none\n    server-template srv1_ 1 other.internal:9001 check\n`;
  const kept = filterServerState(state, cfg).split('\n');
  assert.ok(kept.some((l) => l.startsWith('4 tpl 1 srv2 ')) && kept.some((l) => l.startsWith('4 tpl 2 srv3 ')), 'slots of an unchanged template keep their addresses');
  assert.ok(!kept.some((l) => l.startsWith('4 tpl 3 srv1_1 ')), 'a slot whose template changed port starts afresh');
  assert.ok(kept.some((l) => l.startsWith('3 myapp 3 web ')));
  const renamed = filterServerState(STATE, `backend myapp\n    server web web2.example:80 check\n`).split('\n');
  assert.ok(!renamed.some((l) => l.startsWith('3 myapp 3 web ')), 'another host name: its old address is not restored');
});
