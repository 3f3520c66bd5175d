import { test } from 'node:test';
import assert from 'node:assert/strict';
import { envLookup, loadSidecarSettings, parseSidecarArgs, sidecarConfigFile, sidecarSettings, SIDECAR_ENV, type SidecarSettingsInput } from './settings.js';

const noFiles = (path: string): string => {
  throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
};

function settings(env: Record<string, string>, over: Partial<SidecarSettingsInput> = {}) {
  return sidecarSettings({ lookup: envLookup(env), readFile: noFiles, ...over });
}

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'E_CONFIG', String(err));
    return (err as Error).message;
  }
  assert.fail('no error');
}

test('not configured: undefined; SIDECAR_* alone is an error naming the variable', () => {
  assert.equal(settings({}), undefined);
  assert.equal(settings({ SIDECAR_STATE_URL: '' }), undefined, "'' counts as unset");
  assert.equal(
    configError(() => settings({ SIDECAR_LISTEN: '0.0.0.0:7778' })),
    'SIDECAR_LISTEN: the sidecar source also needs SIDECAR_STATE_URL, HAPROXY_API_FOLLOW (-F) or HAPROXY_API_CONFIG_FILE (-f)',
  );
  assert.match(configError(() => settings({ SIDECAR_USE_HOSTNAMES: 'on' })), /^SIDECAR_USE_HOSTNAMES: /);
});

test('a state URL alone: defaults like haproxy-api (push listener 0.0.0.0:7778, all addresses, IPs)', () => {
  assert.deepEqual(settings({ SIDECAR_STATE_URL: 'http://localhost:7777/api/state.json' }), {
    stateUrl: 'http://localhost:7777/api/state.json',
    listen: { host: '0.0.0.0', port: 7778 },
    useHostnames: false,
    notes: [],
  });
});

test('every variable parsed; errors name the variable', () => {
  const s = settings(
    { SIDECAR_STATE_URL: 'https://sc:7777/api/state.json', SIDECAR_LISTEN: '127.0.0.1:9000', SIDECAR_BIND_IP: '192.168.168.168', SIDECAR_USE_HOSTNAMES: 'yes', SIDECAR_PUSH_TOKEN_FILE: '/run/secrets/push' },
    { readFile: (p) => (p === '/run/secrets/push' ? 's3cret-token\n' : noFiles(p)) },
  );
  assert.deepEqual(s, {
    stateUrl: 'https://sc:7777/api/state.json',
    listen: { host: '127.0.0.1', port: 9000 },
    useHostnames: true,
    bindIp: '192.168.168.168',
    pushToken: 's3cret-token',
    notes: [],
  });
  assert.deepEqual(settings({ SIDECAR_STATE_URL: 'http://x/', SIDECAR_LISTEN: ':7779' })!.listen, { host: '0.0.0.0', port: 7779 });
  const msg = configError(() =>
    settings({ SIDECAR_STATE_URL: 'localhost:7777/state.json', SIDECAR_LISTEN: '0.0.0.0:99999', SIDECAR_BIND_IP: 'eth0', SIDECAR_USE_HOSTNAMES: 'maybe', SIDECAR_PUSH_TOKEN_FILE: 'relative' }),
  );
  const lines = msg.split('\n');
  assert.deepEqual(
    lines.map((l) => l.split(':')[0]),
    ['SIDECAR_STATE_URL', 'SIDECAR_LISTEN', 'SIDECAR_BIND_IP', 'SIDECAR_USE_HOSTNAMES', 'SIDECAR_PUSH_TOKEN_FILE'],
  );
  for (const l of lines) assert.ok(!l.includes('\n'));
});

test('push token: an unreadable file or a token with spaces is an error that never shows the token', () => {
  assert.match(configError(() => settings({ SIDECAR_STATE_URL: 'http://x/', SIDECAR_PUSH_TOKEN_FILE: '/none' })), /^SIDECAR_PUSH_TOKEN_FILE: cannot read "\/none": ENOENT$/);
  const msg = configError(() => settings({ SIDECAR_STATE_URL: 'http://x/', SIDECAR_PUSH_TOKEN_FILE: '/t' }, { readFile: () => 'two words' }));
  assert.match(msg, /^SIDECAR_PUSH_TOKEN_FILE \(\/t\): the value \(9 characters\) is not a token/);
  assert.ok(!msg.includes('two words'));
  assert.equal(SIDECAR_ENV.SIDECAR_PUSH_TOKEN_FILE.secret, true);
});

test('follower mode: -F wins over HAPROXY_API_FOLLOW; the state URL is derived like haproxy-api, a given one is noted', () => {
  const env = { HAPROXY_API_FOLLOW: 'sc-a:7777', SIDECAR_STATE_URL: 'http://other:7777/state.json' };
  const fromEnv = settings(env)!;
  assert.deepEqual(fromEnv.follow, { host: 'sc-a', port: 7777 });
  assert.equal(fromEnv.stateUrl, 'http://sc-a:7777/api/state.json');
  assert.deepEqual(fromEnv.notes, ['SIDECAR_STATE_URL is not used in follower mode: the state is read from http://sc-a:7777/api/state.json']);
  const fromFlag = settings(env, { args: parseSidecarArgs(['-F', '10.0.0.9:7777']) })!;
  assert.deepEqual(fromFlag.follow, { host: '10.0.0.9', port: 7777 });
  assert.equal(settings({ HAPROXY_API_FOLLOW: '[::1]:7777' })!.stateUrl, 'http://[::1]:7777/api/state.json');
  assert.match(configError(() => settings({ HAPROXY_API_FOLLOW: 'sc-a' })), /^HAPROXY_API_FOLLOW: "sc-a" is not host:port/);
  assert.match(configError(() => settings({}, { args: parseSidecarArgs(['-F', 'a b:1']) })), /^-F: "a b:1" is not host:port/);
});

test('argv: kingpin spellings of -F and -f; other arguments are kept in order; mistakes named', () => {
  assert.deepEqual(parseSidecarArgs(['run', '-F', 'h:1', '-f', 'a.toml']), { rest: ['run'], follow: 'h:1', configFile: 'a.toml' });
  assert.deepEqual(parseSidecarArgs(['-Fh:1', '-fa.toml']), { rest: [], follow: 'h:1', configFile: 'a.toml' });
  assert.deepEqual(parseSidecarArgs(['--follow=h:1', '--config-file', 'a.toml', 'render']), { rest: ['render'], follow: 'h:1', configFile: 'a.toml' });
  assert.deepEqual(parseSidecarArgs(['version', '--help']), { rest: ['version', '--help'] });
  assert.throws(() => parseSidecarArgs(['-F']), /^PilotError: -F: needs a value \(host:port of a Sidecar\)$/);
  assert.throws(() => parseSidecarArgs(['-f', '-F', 'h:1']), /^PilotError: -f: needs a value/);
  assert.throws(() => parseSidecarArgs(['--follow=']), /^PilotError: --follow: needs a value/);
  assert.throws(() => parseSidecarArgs(['-F', 'a:1', '--follow', 'b:2']), /^PilotError: --follow: given twice/);
});

test('haproxy-api.toml: its values fill what the environment leaves unset; env and flags win', async () => {
  const toml = `[haproxy_api]\nbind_ip = "0.0.0.0"\nbind_port = 7780\nlogging_level = "debug"\n[haproxy]\nbind_ip = "192.168.168.168"\nuse_hostnames = true\nuser = "haproxy"\ngroup = "haproxy"\npid_file = "/var/run/haproxy.pid"\n[sidecar]\nstate_url = "http://localhost:7777/state.json"\n`;
  const files = (p: string): string => (p === '/etc/haproxy-api.toml' ? toml : noFiles(p));
  const s = (await loadSidecarSettings({ lookup: envLookup({}), args: parseSidecarArgs(['-f', '/etc/haproxy-api.toml']), readFile: files }))!;
  assert.equal(s.stateUrl, 'http://localhost:7777/state.json');
  assert.deepEqual(s.listen, { host: '0.0.0.0', port: 7780 });
  assert.equal(s.bindIp, '192.168.168.168');
  assert.equal(s.useHostnames, true);
  assert.equal(s.logLevel, 'debug');
  assert.equal(s.haproxyUser, 'haproxy');
  assert.equal(s.haproxyGroup, 'haproxy');
  assert.equal(s.configFile, '/etc/haproxy-api.toml');
  assert.deepEqual(s.notes.map((n) => n.split(' ')[0]), ['/etc/haproxy-api.toml:haproxy.pid_file']);

  const over = (await loadSidecarSettings({
    lookup: envLookup({ HAPROXY_API_CONFIG_FILE: '/etc/haproxy-api.toml', SIDECAR_LISTEN: '127.0.0.1:7781', SIDECAR_BIND_IP: '10.1.1.1', SIDECAR_USE_HOSTNAMES: 'off', SIDECAR_STATE_URL: 'http://sc:7777/api/state.json' }),
    readFile: files,
  }))!;
  assert.deepEqual(over.listen, { host: '127.0.0.1', port: 7781 });
  assert.equal(over.bindIp, '10.1.1.1');
  assert.equal(over.useHostnames, false);
  assert.equal(over.stateUrl, 'http://sc:7777/api/state.json');
});

test('haproxy-api.toml: missing file or missing state_url are errors naming the flag or variable', async () => {
  await assert.rejects(async () => loadSidecarSettings({ lookup: envLookup({ HAPROXY_API_CONFIG_FILE: '/none.toml' }), readFile: noFiles }), /^PilotError: HAPROXY_API_CONFIG_FILE: \/none\.toml: cannot read/);
  await assert.rejects(
    async () => loadSidecarSettings({ lookup: envLookup({}), args: parseSidecarArgs(['-f', '/a.toml']), readFile: () => '[haproxy]\n' }),
    /^PilotError: -f: \/a\.toml sets no \[sidecar\] state_url; set it, SIDECAR_STATE_URL or HAPROXY_API_FOLLOW \(-F\)$/,
  );
  // A follower needs no state_url.
  const s = await loadSidecarSettings({ lookup: envLookup({}), args: parseSidecarArgs(['-f', '/a.toml', '-F', 'sc:7777']), readFile: () => '[haproxy]\n' });
  assert.equal(s?.stateUrl, 'http://sc:7777/api/state.json');
});

test('sidecarConfigFile: -f wins over HAPROXY_API_CONFIG_FILE; relative paths allowed (haproxy-api default is ./haproxy-api.toml)', () => {
  assert.deepEqual(sidecarConfigFile(envLookup({ HAPROXY_API_CONFIG_FILE: '/a.toml' }), parseSidecarArgs(['-f', 'haproxy-api.toml'])), { path: 'haproxy-api.toml', where: '-f' });
  assert.deepEqual(sidecarConfigFile(envLookup({ HAPROXY_API_CONFIG_FILE: '/a.toml' })), { path: '/a.toml', where: 'HAPROXY_API_CONFIG_FILE' });
  assert.equal(sidecarConfigFile(envLookup({})), undefined);
});

test('yaml lookups: errors carry the yaml location the lookup gives', () => {
  const msg = configError(() =>
    sidecarSettings({ lookup: (n) => (n === 'SIDECAR_STATE_URL' ? { raw: 'nope', where: '/etc/pilot.yaml:3 sidecar.state_url' } : undefined), readFile: noFiles }),
  );
  assert.equal(msg, '/etc/pilot.yaml:3 sidecar.state_url: "nope" is not an http(s) URL');
});

test('every row has a sidecar.* yaml path and a meaning', () => {
  for (const [name, r] of Object.entries(SIDECAR_ENV)) {
    assert.match(r.yaml ?? '', /^sidecar\.[a-z_]+$/, name);
    assert.ok(r.meaning.length > 10, name);
  }
});
