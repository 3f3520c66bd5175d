import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LIFTED_PREFIX, liftProgramSections } from './program-sections.js';
import { isPilotError } from '../errors.js';

// Seed 003 ("Reliable apps with (HA)Proxy — Part 3"), verbatim.
const SEED_003 = `global
    log stdout format raw local0 debug
defaults
    log global
    mode http
    option httplog clf
    option dontlognull
    option httpchk
    default-server check inter 5s fall 5 downinter 1s rise 2
    timeout connect 5s
    timeout client 10s
    timeout server 10s
    timeout http-request 1s
listen myapp
    bind :8080
    option httpchk GET /
    server srv1 127.0.0.1:8081 check
program myserver
    command /usr/bin/python3 -m http.server 8081
`;

test('seed 003: the program is lifted, the rest is untouched, line numbers kept', () => {
  const r = liftProgramSections(SEED_003, '/etc/haproxy/haproxy.cfg');
  assert.deepEqual(r.programs, [
    {
      name: 'myserver',
      command: ['/usr/bin/python3', '-m', 'http.server', '8081'],
      restart: 'on-failure',
      startOnReload: true,
      origin: '/etc/haproxy/haproxy.cfg:18',
    },
  ]);
  const inLines = SEED_003.split('\n');
  const outLines = r.config.split('\n');
  assert.equal(outLines.length, inLines.length);
  assert.deepEqual(outLines.slice(0, 17), inLines.slice(0, 17));
  assert.equal(outLines[17], `${LIFTED_PREFIX}program myserver`);
  assert.equal(outLines[18], `${LIFTED_PREFIX}    command /usr/bin/python3 -m http.server 8081`);
  assert.equal(outLines[19], '');
  assert.deepEqual(r.warnings, []);
  // Nothing left that HAProxy would read as a program section.
  assert.doesNotMatch(r.config, /^\s*program\b/m);
});

test('several programs between other sections; options, user, group, comments', () => {
  const cfg = [
    'global', // 1
    '  daemon', // 2
    'program web # the web app', // 3
    '  command "/usr/bin/my app" --flag \'a b\' c\\ d', // 4
    '  user www-data', // 5
    '  group www', // 6
    '  no option start-on-reload', // 7
    '', // 8
    '# the frontend', // 9
    'frontend fe', // 10
    '  bind :80', // 11
    'program Exporter', // 12
    '  command /bin/exporter', // 13
    '  option start-on-reload', // 14
    'backend be', // 15
    '  server s 1.2.3.4:80', // 16
  ].join('\n');
  const r = liftProgramSections(cfg, 'cfg');
  assert.deepEqual(r.programs, [
    {
      name: 'web',
      command: ['/usr/bin/my app', '--flag', 'a b', 'c d'],
      restart: 'on-failure',
      user: 'www-data',
      group: 'www',
      startOnReload: false,
      origin: 'cfg:3',
    },
    { name: 'exporter', command: ['/bin/exporter'], restart: 'on-failure', startOnReload: true, origin: 'cfg:12' },
  ]);
  const out = r.config.split('\n');
  for (const n of [3, 4, 5, 6, 7, 12, 13, 14]) assert.ok(out[n - 1]!.startsWith(LIFTED_PREFIX), `line ${n}`);
  for (const n of [1, 2, 8, 9, 10, 11, 15, 16]) assert.equal(out[n - 1], cfg.split('\n')[n - 1], `line ${n}`);
});

test('unsupported program keywords are dropped with a warning naming file:line', () => {
  const r = liftProgramSections('program x\n  command /bin/true\n  foo bar\n', 'f.cfg');
  assert.deepEqual(r.warnings, ['f.cfg:3: "foo bar" in program x is not supported by haproxy-pilot and was dropped']);
});

test('errors: no command, no name, duplicate', () => {
  const cases: [string, RegExp][] = [
    ['program x\n  user nobody\nglobal\n', /f:1: program x has no command/],
    ['program\n  command /bin/true\n', /f:1: program section without a name/],
    ['program a\n command /bin/a\nprogram A\n command /bin/b\n', /f:3: program A is declared twice/],
  ];
  for (const [cfg, re] of cases) {
    assert.throws(
      () => liftProgramSections(cfg, 'f'),
      (e) => isPilotError(e, 'E_CONFIG') && re.test(e.message),
    );
  }
});

test('a config without programs comes back unchanged', () => {
  const cfg = 'global\n  maxconn 10\ndefaults\n  mode http\n';
  assert.deepEqual(liftProgramSections(cfg, 'f'), { config: cfg, programs: [], warnings: [] });
});
