/**
 * Nothing unsafe reaches haproxy.cfg: every env field that ends up in the config rejects
 * newlines, '#', quotes, spaces, oversized values and `${VAR}` with an error naming the variable;
 * discovered data and template helpers throw E_VALUE instead of emitting such values; template
 * mistakes are E_TEMPLATE naming the file.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { isPilotError, type ErrorCode } from '../errors.js';
import type { PilotConfig } from '../config/types.js';
import type { DiscoveredBackend } from '../state/model.js';
import { loadTemplates, renderConfig, type RenderInput } from './render.js';

const BASE = { STATS_PASSWORD: 'pw', PILOT_DEMO: 'off' };
const load = (env: Record<string, string>): PilotConfig =>
  loadConfig({ env: { ...BASE, ...env }, readFile: () => '', fileExists: () => false });

const SVC = { SERVICE_X_BIND: '9000', SERVICE_X_SERVERS: '10.0.0.1:80' };
const DNS = { SERVICE_X_BIND: '9000', SERVICE_X_DNS: 'x.internal:80' };
const RES = { RESOLVER_AWS: 'aws' };

/** [variable, a valid value, the other variables it needs] */
const FIELDS: [string, string, Record<string, string>][] = [
  ['PILOT_RUN_DIR', '/run/x', {}],
  ['PILOT_DEMO_PORT', '8080', { PILOT_DEMO: 'on' }],
  ['STATS_PORT', '1936', {}],
  ['STATS_URI', '/haproxy?stats', {}],
  ['STATS_AUTH', 'basic', {}],
  ['STATS_USER', 'admin', {}],
  ['STATS_PASSWORD', 'occspass', {}],
  ['STATS_PROMETHEUS', 'on', {}],
  ['HAPROXY_MAXCONN', '4096', {}],
  ['HAPROXY_HARD_STOP_AFTER', '30s', {}],
  ['HAPROXY_LOG_FORMAT', 'raw', {}],
  ['HAPROXY_MODE', 'http', {}],
  ['HAPROXY_TIMEOUT_CONNECT', '5s', {}],
  ['HAPROXY_TIMEOUT_CLIENT', '30s', {}],
  ['HAPROXY_TIMEOUT_SERVER', '30s', {}],
  ['HAPROXY_TIMEOUT_HTTP_REQUEST', '10s', {}],
  ['HAPROXY_IDLE_CLOSE_ON_RESPONSE', 'on', {}],
  ['HAPROXY_SERVER_STATE_FILE', 'on', {}],
  ['RESOLVER_AWS', '10.0.0.2:53', {}],
  ['RESOLVER_AWS_HOLD_VALID', '60s', RES],
  ['RESOLVER_AWS_ACCEPTED_PAYLOAD_SIZE', '8192', RES],
  ['SERVICE_X_BIND', '127.0.0.1:8081', { SERVICE_X_SERVERS: '10.0.0.1:80' }],
  ['SERVICE_X_MODE', 'http', SVC],
  ['SERVICE_X_SERVERS', '10.0.0.1:80,10.0.0.2:80', { SERVICE_X_BIND: '9000' }],
  ['SERVICE_X_BALANCE', 'roundrobin', SVC],
  ['SERVICE_X_SSL', '1', SVC],
  ['SERVICE_X_SSL_VERIFY', '0', SVC],
  ['SERVICE_X_CHECK', '1', SVC],
  ['SERVICE_X_CHECK_PATH', '/health', SVC],
  ['SERVICE_X_HOST_HEADER', 'api.example.com', SVC],
  ['SERVICE_X_DNS', 'api.example.com:443', { SERVICE_X_BIND: '9000' }],
  ['SERVICE_X_RESOLVERS', 'aws', { ...DNS, ...RES }],
  ['SERVICE_X_SLOTS', '3', DNS],
  ['SERVICE_X_RESOLVE_PREFER', 'ipv4', DNS],
];

const ATTACKS = (valid: string): string[] => [
  `${valid}\n    server evil 6.6.6.6:80`,
  `${valid}\r\nx`,
  `${valid} #`,
  `${valid}#x`,
  `${valid}"`,
  `"${valid}"`,
  `${valid} x`,
  `${valid}\${VAR}`,
  '${VAR}',
  'x'.repeat(5000),
  `${valid}${'1'.repeat(5000)}`,
];

test('every env field that reaches haproxy.cfg rejects injection, naming the variable', () => {
  for (const [name, valid, ctx] of FIELDS) {
    assert.doesNotThrow(() => load({ ...ctx, [name]: valid }), `${name}=${valid} is valid`);
    for (const bad of ATTACKS(valid)) {
      assert.throws(
        () => load({ ...ctx, [name]: bad }),
        (e: unknown) => isPilotError(e, 'E_CONFIG') && e.message.split('\n').some((l) => l.startsWith(`${name}:`) || l.startsWith(`${name} `)),
        `${name}=${JSON.stringify(bad.slice(0, 60))} must be rejected naming ${name}`,
      );
    }
  }
});

test('KV_TOKEN (an HTTP header, not haproxy.cfg) rejects what could split a header', () => {
  for (const bad of ['tok\nX-Evil: 1', 'tok en', 'x'.repeat(5000)]) {
    assert.throws(() => load({ KV_URL: 'http://kv:8500', KV_TOKEN: bad }), (e: unknown) => isPilotError(e, 'E_CONFIG') && e.message.startsWith('KV_TOKEN: '));
  }
});

test('secrets are not echoed in errors', () => {
  try {
    load({ STATS_PASSWORD: 'my secret' });
    assert.fail('accepted');
  } catch (e) {
    assert.ok(isPilotError(e, 'E_CONFIG'));
    assert.doesNotMatch(e.message, /my secret/);
    assert.match(e.message, /^STATS_PASSWORD: the value \(9 characters\)/);
  }
});

const input = (over: Partial<RenderInput> = {}): RenderInput => ({ config: load({}), backends: [], keys: {}, hasPrometheus: false, ...over });
const throwsCode = (fn: () => unknown, code: ErrorCode, re: RegExp) =>
  assert.throws(fn, (e: unknown) => isPilotError(e, code) && re.test(e.message), `expected ${code} matching ${re}`);

test('discovered values are validated again at render time', () => {
  const t = loadTemplates();
  const backend = (over: Partial<DiscoveredBackend>): DiscoveredBackend => ({ name: 'b', mode: 'http', servers: [{ name: 's', host: '10.0.0.1', port: 80 }], source: 'kv', ...over });
  throwsCode(() => renderConfig(t, input({ backends: [backend({ servers: [{ name: 's', host: '10.0.0.1\n    server evil 1.1.1.1', port: 80 }] })] })), 'E_VALUE', /^backend b server s \(source kv\): /);
  throwsCode(() => renderConfig(t, input({ backends: [backend({ servers: [{ name: 's #', host: '10.0.0.1', port: 80 }] })] })), 'E_VALUE', /server s #/);
  throwsCode(() => renderConfig(t, input({ backends: [backend({ route: { domain: 'a.org }  or { always_true' } })] })), 'E_VALUE', /^backend b \(source kv\) route domain: /);
  throwsCode(() => renderConfig(t, input({ backends: [backend({ route: { pathPrefix: '/a b' } })] })), 'E_VALUE', /route path/);
  throwsCode(() => renderConfig(t, input({ backends: [backend({ name: 'stats' })] })), 'E_VALUE', /proxy name "stats" is used twice/);
  throwsCode(() => renderConfig(t, input({ config: load({ STATS_PASSWORD: '' }), statsPassword: 'a b' })), 'E_VALUE', /^STATS_PASSWORD: /);
  throwsCode(() => renderConfig(t, input({ config: load({ STATS_PASSWORD: '' }) })), 'E_VALUE', /no password/);
  throwsCode(() => renderConfig(t, input({ certsDir: '/certs\n    bind :1' })), 'E_VALUE', /^certsDir: /);
});

let dir = '';
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'pilot-tpl-'));
});
after(() => rmSync(dir, { recursive: true, force: true }));

/** A PILOT_TEMPLATES directory with these files. */
function templatesDir(name: string, files: Record<string, string>): string {
  const d = join(dir, name);
  for (const [f, text] of Object.entries(files)) {
    mkdirSync(join(d, f, '..'), { recursive: true });
    writeFileSync(join(d, f), text);
  }
  return d;
}

test('helpers: seed 002 form, and emitters throw E_VALUE naming the template file', () => {
  const d = templatesDir('helpers', {
    'haproxy.cfg.hbs': '{{#each (gets "/apps/myapp/containers/*")}}server {{name (base this.Key)}} {{hostport this.Value}} check\n{{/each}}',
  });
  const t = loadTemplates(d);
  const ok = renderConfig(t, input({ keys: { '/apps/myapp/containers/two': '10.9.1.2:32002', '/apps/myapp/containers/one': '10.9.1.1:32001', '/apps/myapp/containers/x/y': 'deeper' } }));
  assert.equal(ok, 'server one 10.9.1.1:32001 check\nserver two 10.9.1.2:32002 check\n');
  const file = join(d, 'haproxy.cfg.hbs');
  for (const bad of ['10.9.1.1:32001\n    server evil 6.6.6.6:80', '10.9.1.1:32001 #', '"10.9.1.1":1', '10.9.1.1:1 backup', '${X}:80']) {
    throwsCode(() => renderConfig(t, input({ keys: { '/apps/myapp/containers/one': bad } })), 'E_VALUE', new RegExp(`^${file.replace(/[.]/g, '\\.')}:1: hostport: `));
  }
  throwsCode(() => renderConfig(t, input({ keys: { '/apps/myapp/containers/a b': '10.0.0.1:80' } })), 'E_VALUE', /: name: "a b" is not a name/);
});

test('helpers: getv, q, ls, exists, json, getenv', () => {
  const d = templatesDir('getv', {
    'haproxy.cfg.hbs': [
      '{{getv "/a/x"}} {{getv "/missing" "dflt"}} {{q (getv "/a/h")}}',
      '{{#each (ls "/a")}}{{this}},{{/each}} {{#each (lsdir "/")}}{{this}},{{/each}}',
      '{{#if (exists "/a")}}yes{{/if}} {{#if (exists "/b")}}no{{/if}}',
      '{{#with (json (getv "/j"))}}{{this.address}}:{{port this.port}}{{/with}} {{getenv "FOO"}}',
    ].join('\n'),
  });
  const t = loadTemplates(d);
  const keys = { '/a/x': '1', '/a/h': 'example.org', '/a/sub/y': '2', '/j': '{"address": "1.2.3.4",\n "port": 8080}' };
  const config = loadConfig({ env: { ...BASE, FOO: 'bar' }, readFile: () => '', fileExists: () => false });
  assert.equal(renderConfig(t, input({ config, keys })), '1 dflt "example.org"\nh,sub,x, a,\nyes\n1.2.3.4:8080 bar\n');
  throwsCode(() => renderConfig(t, input({ config, keys: { ...keys, '/a/h': 'a"b' } })), 'E_VALUE', /q: "a\\"b" is not printable text/);
  throwsCode(() => renderConfig(t, input({ config, keys: { ...keys, '/a/h': 'x\ny' } })), 'E_VALUE', /q: /);
  const { '/a/x': _x, ...withoutX } = keys;
  throwsCode(() => renderConfig(t, input({ config, keys: withoutX })), 'E_TEMPLATE', /haproxy\.cfg\.hbs:1: getv: key "\/a\/x" does not exist/);
});

test('template errors: syntax, runtime (strict), missing partial, missing dir — E_TEMPLATE naming the file', () => {
  const syntax = templatesDir('syntax', { 'partials/stats.hbs': 'frontend stats\n{{#if stats}}\n' });
  throwsCode(() => loadTemplates(syntax), 'E_TEMPLATE', new RegExp(`^${join(syntax, 'partials', 'stats.hbs')}: Parse error on line`));

  const runtime = templatesDir('runtime', { 'partials/global.hbs': 'global\n    maxconn {{global.maxconnn}}\n' });
  throwsCode(() => renderConfig(loadTemplates(runtime), input()), 'E_TEMPLATE', new RegExp(`^${join(runtime, 'partials', 'global.hbs')}:2: unknown name "maxconnn"`));

  const missing = templatesDir('missing', { 'haproxy.cfg.hbs': '{{> nosuch}}\n' });
  throwsCode(() => renderConfig(loadTemplates(missing), input()), 'E_TEMPLATE', new RegExp(`^${join(missing, 'haproxy.cfg.hbs')}:1: unknown partial "nosuch"`));

  throwsCode(() => loadTemplates(join(dir, 'does-not-exist')), 'E_TEMPLATE', /^PILOT_TEMPLATES: /);
});

test('a user partial replaces only that partial', () => {
  const d = templatesDir('one-partial', { 'partials/stats.hbs': '# no stats here\n' });
  const text = renderConfig(loadTemplates(d), input());
  assert.match(text, /# no stats here/);
  assert.doesNotMatch(text, /frontend stats/);
  assert.match(text, /^defaults$/m, 'the other embedded partials still render');
});

test('env and getenv never print a value with a control character: the error names the variable, file and line', () => {
  const config = loadConfig({ env: { ...BASE, MY_NOTE: 'x\n    bind :1', TABBED: 'a\tb', FINE: 'ok' }, readFile: () => '', fileExists: () => false });
  const cases: [string, string][] = [
    ['env', 'global\n    # {{env.MY_NOTE}}\n'],
    ['config-env', 'global\n    # {{config.env.MY_NOTE}}\n'],
    ['getenv', 'global\n    # {{getenv "MY_NOTE"}}\n'],
    // No line names the variable: the file is named.
    ['each-env', 'global\n{{#each env}}    # {{@key}} {{this}}\n{{/each}}\n'],
  ];
  for (const [name, text] of cases) {
    const d = templatesDir(`ctl-${name}`, { 'haproxy.cfg.hbs': text });
    const file = join(d, 'haproxy.cfg.hbs');
    const line = name === 'each-env' ? '' : ':2';
    throwsCode(() => renderConfig(loadTemplates(d), input({ config })), 'E_VALUE', new RegExp(`^${file.replace(/[.]/g, '\\.')}${line}: MY_NOTE: its value has a newline`));
  }
  const tab = templatesDir('ctl-tab', { 'haproxy.cfg.hbs': 'global\n    # {{getenv "TABBED"}}\n' });
  throwsCode(() => renderConfig(loadTemplates(tab), input({ config })), 'E_VALUE', /:2: TABBED: its value has a tab/);
  // Testing such a value is fine; printing a plain one too.
  const test = templatesDir('ctl-test', { 'haproxy.cfg.hbs': '{{#if env.MY_NOTE}}# note set{{/if}} {{env.FINE}} {{getenv "FINE"}}\n' });
  assert.equal(renderConfig(loadTemplates(test), input({ config })), '# note set ok ok\n');
});

test('every helper that outputs a value refuses control characters', () => {
  const d = templatesDir('ctl-getv', { 'haproxy.cfg.hbs': 'global\n    # {{getv "/k"}}\n' });
  throwsCode(() => renderConfig(loadTemplates(d), input({ keys: { '/k': 'x\n    bind :1' } })), 'E_VALUE', /haproxy\.cfg\.hbs:2: getv: the value it gives has a newline/);
  const b = templatesDir('ctl-base', { 'haproxy.cfg.hbs': 'global\n    # {{base (getv "/k")}}\n' });
  throwsCode(() => renderConfig(loadTemplates(b), input({ keys: { '/k': 'a/x\ty' } })), 'E_VALUE', /haproxy\.cfg\.hbs:2: .*a tab/);
});

test('getenv of a secret says it is withheld, not that it is unset', () => {
  const config = loadConfig({ env: { ...BASE, KV_URL: 'http://kv:8500', KV_TOKEN: 'tok' }, readFile: () => '', fileExists: () => false });
  for (const v of ['STATS_PASSWORD', 'KV_TOKEN']) {
    const d = templatesDir(`withheld-${v}`, { 'haproxy.cfg.hbs': `global\n    # {{getenv "${v}"}}\n` });
    throwsCode(() => renderConfig(loadTemplates(d), input({ config })), 'E_VALUE', new RegExp(`:2: getenv: ${v} is withheld from templates: it is a secret`));
  }
  const unset = templatesDir('unset', { 'haproxy.cfg.hbs': 'global\n    # {{getenv "NOT_SET_ANYWHERE"}}\n' });
  throwsCode(() => renderConfig(loadTemplates(unset), input()), 'E_TEMPLATE', /:2: getenv: NOT_SET_ANYWHERE is not set/);
});

test('template errors name the file, the line and the unknown name in words', () => {
  const runtime = templatesDir('words-field', { 'partials/global.hbs': 'global\n    maxconn {{global.maxconnn}}\n' });
  assert.throws(() => renderConfig(loadTemplates(runtime), input()), (e: unknown) => {
    assert.ok(isPilotError(e, 'E_TEMPLATE'));
    assert.match(e.message, new RegExp(`^${join(runtime, 'partials', 'global.hbs').replace(/[.]/g, '\\.')}:2: unknown name "maxconnn"`));
    assert.doesNotMatch(e.message, /object Object/);
    return true;
  });
  const helper = templatesDir('words-helper', { 'haproxy.cfg.hbs': 'global\n\n    {{nosuchhelper "x"}}\n' });
  throwsCode(() => renderConfig(loadTemplates(helper), input()), 'E_TEMPLATE', /haproxy\.cfg\.hbs:3: unknown name "nosuchhelper"/);
  const partial = templatesDir('words-partial', { 'haproxy.cfg.hbs': 'global\n{{> nosuch}}\n' });
  throwsCode(() => renderConfig(loadTemplates(partial), input()), 'E_TEMPLATE', /haproxy\.cfg\.hbs:2: unknown partial "nosuch" \(the partials are backend, defaults, demo, discovered, global, resolvers, services, stats\)/);
  const inString = templatesDir('words-primitive', { 'haproxy.cfg.hbs': 'global\n{{#each (split "a,b" ",")}}\n    # {{this.nope}}\n{{/each}}\n' });
  throwsCode(() => renderConfig(loadTemplates(inString), input()), 'E_TEMPLATE', /haproxy\.cfg\.hbs:3: unknown name "nope"/);
});

test('a file in PILOT_TEMPLATES that replaces nothing is an error naming the known partials', () => {
  const typo = templatesDir('typo-partial', { 'partials/default.hbs': 'defaults\n' });
  throwsCode(() => loadTemplates(typo), 'E_TEMPLATE', /partials\/default\.hbs: no partial is named "default" \(did you mean defaults\.hbs\?\); the partials are backend, defaults, demo, discovered, global, resolvers, services, stats/);
  const misplaced = templatesDir('misplaced', { 'global.hbs': 'global\n' });
  throwsCode(() => loadTemplates(misplaced), 'E_TEMPLATE', /global\.hbs is not used: put it in .*partials\/global\.hbs/);
  // A partial of one's own is fine once a template uses it.
  const own = templatesDir('own-partial', { 'partials/mine.hbs': '# mine\n', 'partials/global.hbs': 'global\n{{> mine}}\n' });
  assert.match(renderConfig(loadTemplates(own), input()), /^# mine$/m);
});
