import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isPilotError } from '../errors.js';
import { alertLocation, checkConfig, firstAlert } from './check.js';

// Real `haproxy -c` (haproxy on PATH).
const BIN = process.env.HAPROXY_BIN ?? 'haproxy';

const GOOD = `global
    maxconn 100
defaults
    mode http
    timeout connect 1s
    timeout client 1s
    timeout server 1s
frontend fe
    bind 127.0.0.1:1
    default_backend be
backend be
    server s1 127.0.0.1:2
`;

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-check-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('checkConfig accepts a valid config', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'good.cfg');
  await writeFile(path, GOOD);
  const result = await checkConfig({ bin: BIN, path, timeoutMs: 10_000 });
  assert.match(result.output, /valid/i);
});

test('checkConfig rejects with E_CHECK naming the file:line and the first ALERT', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'bad.cfg');
  await writeFile(path, GOOD.replace('    default_backend be\n', '    default_backend be\n    bogus_keyword 1\n'));
  await assert.rejects(checkConfig({ bin: BIN, path, timeoutMs: 10_000 }), (err: unknown) => {
    assert.ok(isPilotError(err, 'E_CHECK'));
    assert.ok(err.message.includes(`${path}:11`), err.message);
    assert.match(err.message, /bogus_keyword/);
    assert.equal(err.details?.line, 11);
    assert.match(String(err.details?.output), /Fatal errors found in configuration/);
    return true;
  });
});

test('checkConfig: a missing binary is an E_CHECK, not a crash', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'good.cfg');
  await writeFile(path, GOOD);
  await assert.rejects(checkConfig({ bin: join(dir, 'no-such-haproxy'), path }), (err: unknown) => isPilotError(err, 'E_CHECK') && /ENOENT/.test(err.message));
});

test('firstAlert / alertLocation parse HAProxy output', () => {
  const out = [
    '[NOTICE]   (6061) : haproxy version is 2.6.12',
    "[ALERT]    (6061) : config : parsing [/run/x.cfg:10] : unknown keyword 'bogus' in 'frontend' section",
    '[ALERT]    (6061) : config : Error(s) found in configuration file : /run/x.cfg',
  ].join('\n');
  assert.equal(firstAlert(out), "config : parsing [/run/x.cfg:10] : unknown keyword 'bogus' in 'frontend' section");
  assert.deepEqual(alertLocation(out), { file: '/run/x.cfg', line: 10 });
  assert.equal(firstAlert('[NOTICE] nothing'), undefined);
  assert.equal(alertLocation('no location'), undefined);
});
