import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseHaproxyApiToml, readHaproxyApiToml } from './toml-config.js';

const F = '/etc/haproxy-api.toml';

// haproxy-api's own sample file (HA haproxy-api.toml), comments included.
const SAMPLE = `[haproxy_api]
bind_ip = "0.0.0.0"    # The IP to bind to for this service
bind_port = 7778       # Port we'll bind to for this service
logging_level = "info" # or "debug", or "error", etc

[haproxy]
bind_ip     = "192.168.168.168"       # Bind IP for HAproxy itself
template    = "templates/haproxy.cfg" # Template to use for HAproxy
config_file = "/tmp/haproxy.cfg"      # Where to write the config
pid_file    = "/tmp/haproxy.pid"  # Where to write the HAproxy pid file

[sidecar]
state_url = "http://localhost:7777/state.json" # Where to fetch our initial state
`;

async function rejects(text: string): Promise<string> {
  try {
    await parseHaproxyApiToml(text, F);
  } catch (err) {
    assert.equal((err as { code?: string }).code, 'E_CONFIG');
    return (err as Error).message;
  }
  assert.fail(`accepted: ${text}`);
}

test("haproxy-api's sample file maps key by key, with a note for each ignored key", async () => {
  const c = await parseHaproxyApiToml(SAMPLE, F);
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 7778 });
  assert.equal(c.logLevel, 'info');
  assert.equal(c.stateUrl, 'http://localhost:7777/state.json');
  assert.equal(c.bindIp, '192.168.168.168');
  assert.equal(c.template, 'templates/haproxy.cfg');
  assert.equal(c.useHostnames, undefined);
  assert.equal(c.notes.length, 3);
  assert.match(c.notes[0]!, /^\/etc\/haproxy-api\.toml:haproxy\.template: "templates\/haproxy\.cfg" is a Go text\/template and is not executed/);
  assert.match(c.notes[1]!, /^\/etc\/haproxy-api\.toml:haproxy\.config_file is ignored: /);
  assert.match(c.notes[2]!, /^\/etc\/haproxy-api\.toml:haproxy\.pid_file is ignored: /);
  for (const n of c.notes) assert.ok(!n.includes('\n'), 'one line each');
});

test('defaults as in haproxy-api: empty bind_ip is 0.0.0.0, bind_port 0 is 7778; empty level is info', async () => {
  const c = await parseHaproxyApiToml('[haproxy_api]\nbind_ip = ""\nbind_port = 0\nlogging_level = ""\n[haproxy]\n', F);
  assert.deepEqual(c.listen, { host: '0.0.0.0', port: 7778 });
  assert.equal(c.logLevel, 'info');
  assert.equal(c.stateUrl, undefined);
  assert.equal(c.bindIp, undefined);
});

test('all [haproxy] keys: user, group, use_hostnames, and the four commands noted', async () => {
  const c = await parseHaproxyApiToml(
    `[haproxy_api]\nbind_ip = "10.0.0.5"\nbind_port = 9000\nlogging_level = "debug"\n[haproxy]\nuser = "haproxy"\ngroup = "haproxy"\nuse_hostnames = true\nreload_cmd = "haproxy -f x"\nverify_cmd = "haproxy -c -f x"\n`,
    F,
  );
  assert.deepEqual(c.listen, { host: '10.0.0.5', port: 9000 });
  assert.equal(c.logLevel, 'debug');
  assert.equal(c.user, 'haproxy');
  assert.equal(c.group, 'haproxy');
  assert.equal(c.useHostnames, true);
  assert.deepEqual(
    c.notes.map((n) => n.split(' is ignored')[0]),
    [`${F}:haproxy.reload_cmd`, `${F}:haproxy.verify_cmd`],
  );
});

test('keys match case-insensitively, like BurntSushi/toml in haproxy-api', async () => {
  const c = await parseHaproxyApiToml('[Sidecar]\nState_URL = "http://sc:7777/api/state.json"\n[HAproxy]\nUse_Hostnames = true\n', F);
  assert.equal(c.stateUrl, 'http://sc:7777/api/state.json');
  assert.equal(c.useHostnames, true);
  assert.match(await rejects('[sidecar]\nstate_url = "http://a/"\nSTATE_URL = "http://b/"\n'), /sidecar\.STATE_URL: set twice/);
});

test('logging levels: logrus names map to ours; others are errors naming the key', async () => {
  for (const [given, want] of [['warn', 'warn'], ['WARNING', 'warn'], ['error', 'error'], ['panic', 'fatal'], ['trace', 'trace']] as const) {
    assert.equal((await parseHaproxyApiToml(`[haproxy_api]\nlogging_level = "${given}"\n`, F)).logLevel, want);
  }
  assert.equal(await rejects('[haproxy_api]\nlogging_level = "loud"\n'), `${F}:haproxy_api.logging_level: "loud" is not a log level (info, warn, error, debug)`);
});

test('unknown keys and sections are errors naming file:key, all reported together', async () => {
  const msg = await rejects('top = 1\n[haproxy_api]\nbind_addr = "x"\n[haproxy]\nmaxconn = 10\n[extra]\nx = 1\n');
  const lines = msg.split('\n');
  assert.equal(lines.length, 4);
  assert.match(lines[0]!, /^\/etc\/haproxy-api\.toml:top: unknown key/);
  assert.match(lines[1]!, /^\/etc\/haproxy-api\.toml:haproxy_api\.bind_addr: unknown key \(known in \[haproxy_api\]: bind_ip, bind_port, logging_level\)/);
  assert.match(lines[2]!, /^\/etc\/haproxy-api\.toml:haproxy\.maxconn: unknown key/);
  assert.match(lines[3]!, /^\/etc\/haproxy-api\.toml:extra: unknown section/);
});

test('wrong types and unsafe values are errors naming the key', async () => {
  const cases: [string, RegExp][] = [
    ['[haproxy_api]\nbind_port = "7778"\n', /haproxy_api\.bind_port: "7778" is not a port number/],
    ['[haproxy_api]\nbind_port = 70000\n', /haproxy_api\.bind_port: "70000" is not a port number/],
    ['[haproxy_api]\nbind_port = 7.5\n', /haproxy_api\.bind_port: "7.5" is not a port number/],
    ['[haproxy_api]\nbind_ip = 1\n', /haproxy_api\.bind_ip: must be a string/],
    ['[haproxy]\nbind_ip = "0.0.0.0\\n  server x 1.1.1.1:1"\n', /haproxy\.bind_ip: "0\.0\.0\.0\\n  server x 1\.1\.1\.1:1" is not an IP address/],
    ['[haproxy]\nbind_ip = "lo"\n', /haproxy\.bind_ip: "lo" is not an IP address/],
    ['[haproxy]\nuse_hostnames = "yes"\n', /haproxy\.use_hostnames: must be true or false/],
    ['[haproxy]\nuser = "root\\ndaemon"\n', /haproxy\.user: "root\\ndaemon" is not a name/],
    ['[haproxy]\nreload_cmd = ["a"]\n', /haproxy\.reload_cmd: must be a string/],
    ['[sidecar]\nstate_url = "localhost:7777/state.json"\n', /sidecar\.state_url: "localhost:7777\/state\.json" is not an http\(s\) URL/],
    ['[sidecar]\nstate_url = "file:///etc/passwd"\n', /is not an http\(s\) URL/],
    ['haproxy = 1\n', /haproxy: must be a section/],
  ];
  for (const [text, re] of cases) assert.match(await rejects(text), re, text);
});

test('TOML syntax errors name the file, line and column', async () => {
  assert.match(await rejects('[haproxy_api]\nbind_port = = 1\n'), /^\/etc\/haproxy-api\.toml:2:\d+: not valid TOML: /);
  assert.match(await rejects('[haproxy]\n[haproxy]\n'), /^\/etc\/haproxy-api\.toml:2:\d+: not valid TOML/);
});

test('readHaproxyApiToml: an unreadable file is an error naming it', async () => {
  await assert.rejects(
    async () => readHaproxyApiToml('/nope/haproxy-api.toml', () => {
      throw Object.assign(new Error('ENOENT: no such file or directory'), { code: 'ENOENT' });
    }),
    /^PilotError: \/nope\/haproxy-api\.toml: cannot read haproxy-api's configuration file: ENOENT/,
  );
  const c = await readHaproxyApiToml(F, () => SAMPLE);
  assert.equal(c.file, F);
});
