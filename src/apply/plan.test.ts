import { test } from 'node:test';
import assert from 'node:assert/strict';
import { indexSections, parseServerLine, planApply, type Lingering, type Plan } from './plan.js';

const cfg = (servers: string[], opts: { balance?: string; defaults?: string[]; extra?: string[]; listen?: string } = {}) =>
  [
    'global',
    '    maxconn 100',
    'defaults',
    '    mode http',
    ...(opts.defaults ?? []).map((l) => `    ${l}`),
    'frontend fe',
    `    bind ${opts.listen ?? ':8080'}`,
    '    default_backend web',
    '# backend web (source kv)',
    'backend web',
    `    balance ${opts.balance ?? 'roundrobin'}`,
    ...(opts.extra ?? []).map((l) => `    ${l}`),
    ...servers.map((s) => `    server ${s}`),
    '',
  ].join('\n');

const A = 'a 10.0.0.1:80 check';
const B = 'b 10.0.0.2:80 check';

const show = (p: Plan): string =>
  p.kind === 'reload' ? `reload: ${p.reason}` : p.kind === 'none' ? 'none' : [...p.ops.map((o) => o.command), ...p.removed.map((r) => `(remove ${r.backend}/${r.server})`), ...p.returned.map((r) => `(returned ${r})`)].join(' | ');

const cases: [string, string, string, string, Map<string, Lingering>?][] = [
  ['unchanged', cfg([A, B]), cfg([A, B]), 'none'],
  ['a comment changes nothing', cfg([A, B]), cfg([A, B]).replace('# backend web (source kv)', '# moved'), 'none'],
  ['an address change', cfg([A, B]), cfg(['a 10.0.0.9:8080 check', B]), 'set server web/a addr 10.0.0.9 port 8080'],
  ['a move to a host name reloads', cfg([A]), cfg(['a app.internal:80 check']), 'reload: server web/a moved to host name app.internal'],
  ['a weight change', cfg([A, B]), cfg(['a 10.0.0.1:80 check weight 7', B]), 'set server web/a weight 7'],
  ['maint and back', cfg([A, B]), cfg(['a 10.0.0.1:80 check disabled', B]), 'set server web/a state maint'],
  ['ready again', cfg(['a 10.0.0.1:80 check disabled', B]), cfg([A, B]), 'set server web/a state ready'],
  ['a removed server goes to maint and is deleted later', cfg([A, B]), cfg([A]), 'set server web/b state maint | (remove web/b)'],
  ['a removed server already in maint is only deleted', cfg([A, 'b 10.0.0.2:80 check disabled']), cfg([A]), '(remove web/b)'],
  ['a new server is added, checked and made ready', cfg([A]), cfg([A, B]), 'add server web/b 10.0.0.2:80 check | enable health web/b | set server web/b state ready'],
  ['a new server with a weight, IPv6', cfg([A]), cfg([A, 'c [2001:db8::1]:80 weight 3']), 'add server web/c [2001:db8::1]:80 weight 3 | set server web/c state ready'],
  ['a new disabled server stays in maint', cfg([A]), cfg([A, 'b 10.0.0.2:80 check disabled']), 'add server web/b 10.0.0.2:80 check | enable health web/b'],
  ['weight 0 is drain: a server drains', cfg([A, B]), cfg(['a 10.0.0.1:80 check weight 0', B]), 'set server web/a state drain'],
  ['a drained server is ready again, at its weight', cfg(['a 10.0.0.1:80 check weight 0', B]), cfg(['a 10.0.0.1:80 check weight 3', B]), 'set server web/a weight 3 | set server web/a state ready'],
  ['a drained server is ready again, at the default weight', cfg(['a 10.0.0.1:80 check weight 0', B]), cfg([A, B]), 'set server web/a weight 1 | set server web/a state ready'],
  ['a drained server goes to maint', cfg(['a 10.0.0.1:80 check weight 0', B]), cfg(['a 10.0.0.1:80 check weight 0 disabled', B]), 'set server web/a state maint'],
  ['a server in maint drains (drain leaves maint)', cfg(['a 10.0.0.1:80 check disabled', B]), cfg(['a 10.0.0.1:80 check weight 0', B]), 'set server web/a state drain'],
  ['a server in maint goes to maint with weight 0: nothing to do', cfg(['a 10.0.0.1:80 check disabled', B]), cfg(['a 10.0.0.1:80 check weight 0 disabled', B]), 'none'],
  ['a drained server moves', cfg(['a 10.0.0.1:80 check weight 0', B]), cfg(['a 10.0.0.9:80 check weight 0', B]), 'set server web/a addr 10.0.0.9 port 80'],
  ['a new drained server is added in drain', cfg([A]), cfg([A, 'b 10.0.0.2:80 check weight 0']), 'add server web/b 10.0.0.2:80 check weight 0 | enable health web/b | set server web/b state drain'],
  ['static-rr cannot take new servers', cfg([A], { balance: 'static-rr' }), cfg([A, B], { balance: 'static-rr' }), 'reload: server web/b added (balance static-rr is not dynamic)'],
  ['a consistent hash can', cfg([A], { balance: 'source', extra: ['hash-type consistent'] }), cfg([A, B], { balance: 'source', extra: ['hash-type consistent'] }), 'add server web/b 10.0.0.2:80 check | enable health web/b | set server web/b state ready'],
  ['default-server is not inherited', cfg([A], { defaults: ['default-server inter 2s'] }), cfg([A, B], { defaults: ['default-server inter 2s'] }), 'reload: server web/b added (default-server settings are not inherited by added servers)'],
  ['keywords add server refuses', cfg([A]), cfg([A, 'b 10.0.0.2:80 check resolvers dns']), 'reload: server web/b added ("resolvers" cannot be given to an added server)'],
  // add server answers "'no-ssl' option is not accepted for dynamic server" (2.6.12): plan the reload, do not try.
  ['no-ssl and no-check-ssl cannot be given to an added server', cfg([A]), cfg([A, 'b 10.0.0.2:80 check no-ssl']), 'reload: server web/b added ("no-ssl" cannot be given to an added server)'],
  ['no-check-ssl neither', cfg([A]), cfg([A, 'b 10.0.0.2:80 check no-check-ssl']), 'reload: server web/b added ("no-check-ssl" cannot be given to an added server)'],
  ['a host name cannot be added', cfg([A]), cfg([A, 'b app.internal:80 check']), 'reload: server web/b added (app.internal is a host name)'],
  ['other server settings changed', cfg([A]), cfg(['a 10.0.0.1:80 check inter 1s']), 'reload: server web/a changed its settings'],
  ['a backend line changed', cfg([A]), cfg([A], { extra: ['option redispatch'] }), 'reload: backend web changed beyond its servers'],
  ['a frontend changed', cfg([A]), cfg([A], { listen: ':8081' }), 'reload: frontend fe changed'],
  ['a section added', cfg([A]), `${cfg([A])}backend other\n    server x 10.0.0.3:80\n`, 'reload: backend other added'],
  ['a section removed', `${cfg([A])}backend other\n    server x 10.0.0.3:80\n`, cfg([A]), 'reload: backend other removed'],
  [
    'a server that comes back while HAProxy still holds it is made ready, moved if needed',
    cfg([A]),
    cfg([A, 'b 10.0.0.7:80 check']),
    'set server web/b addr 10.0.0.7 port 80 | set server web/b state ready | (returned web/b)',
    new Map([['web/b', { backend: 'web', server: 'b', line: parseServerLine(['server', 'b', '10.0.0.2:80', 'check'])! }]]),
  ],
];

for (const [name, running, next, want, lingering] of cases) {
  test(`plan: ${name}`, () => {
    assert.equal(show(planApply({ running, next, lingering: lingering ?? new Map() })), want);
  });
}

test('indexSections: indented keywords open sections; text before the first is ignored', () => {
  const s = indexSections('# head\nglobal\n  maxconn 1\n  backend b\n    server a 1.2.3.4:80\nlisten "x y"\n');
  assert.deepEqual(s.map((x) => [x.keyword, x.name]), [['global', ''], ['backend', 'b'], ['listen', 'x y']]);
  assert.equal(s[1]!.text, '  backend b\n    server a 1.2.3.4:80\n');
});

test('parseServerLine: addresses and the runtime-settable keywords', () => {
  assert.deepEqual(parseServerLine(['server', 'a', '10.0.0.1:80', 'check', 'weight', '5', 'disabled']), { name: 'a', host: '10.0.0.1', port: 80, rest: ['check'], weight: 5, disabled: true });
  assert.equal(parseServerLine(['server', 'a', '[::1]:80'])?.host, '::1');
  assert.equal(parseServerLine(['server', 'a', 'unix@/x']), undefined);
});
