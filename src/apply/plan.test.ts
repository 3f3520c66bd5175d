import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DiscoveredBackend, DiscoveredServer } from '../state/model.js';
import { configSkeleton, planApply, runningAfter, type Plan, type RunningBackend, type RunningServer } from './plan.js';

const srv = (name: string, host: string, port: number, extra: Partial<DiscoveredServer> = {}): DiscoveredServer => ({ name, host, port, ...extra });
const be = (name: string, servers: RunningServer[], extra: Partial<DiscoveredBackend> = {}): RunningBackend => ({ name, mode: 'http', servers, source: 'kv', ...extra });

const base = [be('web', [srv('a', '10.0.0.1', 80), srv('b', '10.0.0.2', 80, { weight: 5 })]), be('api', [srv('x', '10.0.1.1', 8080)])];

function commands(plan: Plan): string[] | string {
  if (plan.kind === 'runtime') return plan.ops.map((o) => o.command);
  return plan.kind === 'reload' ? `reload: ${plan.reason}` : 'none';
}

const cases: { name: string; running: RunningBackend[]; next: DiscoveredBackend[]; restChanged?: boolean; want: string[] | string | RegExp }[] = [
  { name: 'identical', running: base, next: base, want: 'none' },
  { name: 'rest of the config changed', running: base, next: base, restChanged: true, want: /^reload: the config changed/ },
  {
    name: 'address and port change',
    running: base,
    next: [be('web', [srv('a', '10.0.0.9', 81), srv('b', '10.0.0.2', 80, { weight: 5 })]), base[1]!],
    want: ['set server web/a addr 10.0.0.9 port 81'],
  },
  {
    name: 'IPv6 address',
    running: base,
    next: [be('web', [srv('a', 'fd00::1', 80), srv('b', '10.0.0.2', 80, { weight: 5 })]), base[1]!],
    want: ['set server web/a addr fd00::1 port 80'],
  },
  {
    name: 'weight change, and absent weight means 1',
    running: base,
    next: [be('web', [srv('a', '10.0.0.1', 80, { weight: 3 }), srv('b', '10.0.0.2', 80)]), base[1]!],
    want: ['set server web/a weight 3', 'set server web/b weight 1'],
  },
  {
    name: 'explicit weight 1 equals absent weight',
    running: base,
    next: [be('web', [srv('a', '10.0.0.1', 80, { weight: 1 }), srv('b', '10.0.0.2', 80, { weight: 5 })]), base[1]!],
    want: 'none',
  },
  {
    name: 'drain and maint',
    running: base,
    next: [be('web', [srv('a', '10.0.0.1', 80, { state: 'drain' }), srv('b', '10.0.0.2', 80, { weight: 5, state: 'maint' })]), base[1]!],
    want: ['set server web/a state drain', 'set server web/b state maint'],
  },
  {
    name: 'back to ready after the address and weight are set',
    running: [be('web', [srv('a', '10.0.0.1', 80, { state: 'maint' })])],
    next: [be('web', [srv('a', '10.0.0.5', 80, { weight: 2 })])],
    want: ['set server web/a addr 10.0.0.5 port 80', 'set server web/a weight 2', 'set server web/a state ready'],
  },
  {
    name: 'to maint before the address moves',
    running: [be('web', [srv('a', '10.0.0.1', 80)])],
    next: [be('web', [srv('a', '10.0.0.5', 80, { state: 'maint' })])],
    want: ['set server web/a state maint', 'set server web/a addr 10.0.0.5 port 80'],
  },
  {
    name: 'server removed goes to maint',
    running: base,
    next: [be('web', [srv('a', '10.0.0.1', 80)]), base[1]!],
    want: ['set server web/b state maint'],
  },
  {
    name: 'removed server already in maint needs nothing',
    running: [be('web', [srv('a', '10.0.0.1', 80), { ...srv('b', '10.0.0.2', 80), removed: true }])],
    next: [be('web', [srv('a', '10.0.0.1', 80)])],
    want: 'none',
  },
  {
    name: 'a removed server comes back',
    running: [be('web', [srv('a', '10.0.0.1', 80), { ...srv('b', '10.0.0.2', 80), removed: true }])],
    next: [be('web', [srv('a', '10.0.0.1', 80), srv('b', '10.0.0.2', 80)])],
    want: ['set server web/b state ready'],
  },
  {
    name: 'a removed server comes back at a new address',
    running: [be('web', [{ ...srv('b', '10.0.0.2', 80), removed: true }])],
    next: [be('web', [srv('b', '10.0.0.3', 90)])],
    want: ['set server web/b addr 10.0.0.3 port 90', 'set server web/b state ready'],
  },
  { name: 'new server', running: base, next: [be('web', [...base[0]!.servers, srv('c', '10.0.0.3', 80)]), base[1]!], want: 'reload: server web/c added' },
  { name: 'new backend', running: base, next: [...base, be('extra', [])], want: 'reload: backend extra added' },
  { name: 'backend removed', running: base, next: [base[0]!], want: 'reload: backend api removed' },
  { name: 'mode change', running: base, next: [base[0]!, { ...base[1]!, mode: 'tcp' }], want: 'reload: backend api mode changed' },
  { name: 'route change', running: base, next: [base[0]!, { ...base[1]!, route: { domain: 'api.example.com' } }], want: 'reload: backend api route changed' },
  {
    name: 'same route',
    running: [be('r', [], { route: { domain: 'a.example', pathPrefix: '/x' } })],
    next: [be('r', [], { route: { pathPrefix: '/x', domain: 'a.example' } })],
    want: 'none',
  },
  {
    name: 'dns discovery change',
    running: [be('d', [], { dns: [{ name: 'svc.example', port: 80, slots: 4 }] })],
    next: [be('d', [], { dns: [{ name: 'svc.example', port: 80, slots: 8 }] })],
    want: 'reload: backend d DNS discovery changed',
  },
  {
    name: 'a host name cannot go through set server addr',
    running: base,
    next: [be('web', [srv('a', 'web-1.internal', 80), srv('b', '10.0.0.2', 80, { weight: 5 })]), base[1]!],
    want: 'reload: server web/a moved to host name web-1.internal',
  },
  {
    name: 'an unchanged host name is fine',
    running: [be('web', [srv('a', 'web-1.internal', 80)])],
    next: [be('web', [srv('a', 'web-1.internal', 80, { weight: 2 })])],
    want: ['set server web/a weight 2'],
  },
];

for (const c of cases) {
  test(`planApply: ${c.name}`, () => {
    const got = commands(planApply({ running: c.running, next: c.next, restChanged: c.restChanged ?? false }));
    if (c.want instanceof RegExp) assert.match(String(got), c.want);
    else assert.deepEqual(got, c.want);
  });
}

test('runningAfter: runtime keeps dropped servers as removed, reload forgets them', () => {
  const next = [be('web', [srv('a', '10.0.0.1', 80)]), base[1]!];
  const afterRuntime = runningAfter('runtime', base, next);
  assert.deepEqual(
    afterRuntime[0]!.servers.map((s) => [s.name, s.removed ?? false]),
    [['a', false], ['b', true]],
  );
  // The planner then brings it back without a reload ...
  assert.deepEqual(commands(planApply({ running: afterRuntime, next: base, restChanged: false })), ['set server web/b state ready']);
  // ... while after a reload it is gone and coming back means a reload.
  const afterReload = runningAfter('reload', afterRuntime, next);
  assert.deepEqual(afterReload[0]!.servers.map((s) => s.name), ['a']);
  assert.equal(planApply({ running: afterReload, next: base, restChanged: false }).kind, 'reload');
});

test('runningAfter does not alias its inputs', () => {
  const next = [be('web', [srv('a', '10.0.0.1', 80)])];
  const out = runningAfter('reload', [], next);
  out[0]!.servers[0]!.port = 1;
  assert.equal(next[0]!.servers[0]!.port, 80);
});

const cfg = (servers: string) => `global
    maxconn 100
defaults
    mode http
frontend fe
    bind :80
    default_backend web
# backend web (source kv)
backend web
    balance roundrobin
${servers}
backend static
    server s1 10.9.9.9:80 check
`;

test('configSkeleton: server address, weight, disabled and count do not matter', () => {
  const a = configSkeleton(cfg('    server a 10.0.0.1:80 check\n    server b 10.0.0.2:80 check weight 5'), ['web']);
  const b = configSkeleton(cfg('    server a 10.0.0.9:81 check weight 0\n    server b 10.0.0.2:80 check disabled'), ['web']);
  const c = configSkeleton(cfg('    server a 10.0.0.1:80 check'), ['web']);
  assert.equal(a, b);
  assert.equal(a, c);
});

test('configSkeleton: server options, other sections and static backends matter', () => {
  const a = configSkeleton(cfg('    server a 10.0.0.1:80 check'), ['web']);
  assert.notEqual(a, configSkeleton(cfg('    server a 10.0.0.1:80 check inter 5s'), ['web']));
  assert.notEqual(a, configSkeleton(cfg('    server a 10.0.0.1:80 check').replace('bind :80', 'bind :81'), ['web']));
  assert.notEqual(a, configSkeleton(cfg('    server a 10.0.0.1:80 check').replace('10.9.9.9', '10.9.9.8'), ['web']));
  // A backend that lost its last server is a change (the reload path handles it).
  assert.notEqual(a, configSkeleton(cfg(''), ['web']));
});

test('configSkeleton: comments and blank lines do not matter', () => {
  const a = configSkeleton(cfg('    server a 10.0.0.1:80 check'), ['web']);
  assert.equal(a, configSkeleton(`# generated\n\n${cfg('    server a 10.0.0.1:80 check')}\n\n`, ['web']));
});
