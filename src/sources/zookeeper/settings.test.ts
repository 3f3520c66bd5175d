import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PilotError } from '../../errors.js';
import { readZookeeperAuth, zookeeperSettings, ZOOKEEPER_ENV } from './settings.js';

const parse = <K extends keyof typeof ZOOKEEPER_ENV>(name: K, raw: string | string[]): ReturnType<(typeof ZOOKEEPER_ENV)[K]['parse']> =>
  ZOOKEEPER_ENV[name].parse(raw, name) as never;

function throwsConfig(fn: () => unknown, re: RegExp): void {
  assert.throws(fn, (err: unknown) => err instanceof PilotError && err.code === 'E_CONFIG' && re.test(err.message) && !err.message.includes('\n'));
}

test('env rows parse and name the variable', () => {
  assert.deepEqual(parse('ZK_SERVERS', 'zk1:2181, zk2:2182,10.0.0.3'), [
    { host: 'zk1', port: 2181 },
    { host: 'zk2', port: 2182 },
    { host: '10.0.0.3', port: 2181 },
  ]);
  assert.deepEqual(parse('ZK_SERVERS', ['zk1:2181', 'zk2:2181']).length, 2, 'a yaml list');
  throwsConfig(() => parse('ZK_SERVERS', 'zk1:2181/chroot'), /^ZK_SERVERS: .*chroot/);
  throwsConfig(() => parse('ZK_SERVERS', 'zk1:99999'), /^ZK_SERVERS: /);
  throwsConfig(() => parse('ZK_SERVERS', 'zk1:2181,,zk2'), /^ZK_SERVERS: /);
  throwsConfig(() => parse('ZK_SERVERS', 'zk 1:2181'), /^ZK_SERVERS: /);
  assert.equal(parse('ZK_PATH', '/service_config'), '/service_config');
  assert.equal(parse('ZK_PATH', '/'), '/');
  for (const bad of ['service_config', '/a/', '/a//b', '/a/../b', '/a b', '/a\nb']) throwsConfig(() => parse('ZK_PATH', bad), /^ZK_PATH: /);
  assert.equal(parse('ZK_SESSION_TIMEOUT', '30s'), 30_000);
  throwsConfig(() => parse('ZK_SESSION_TIMEOUT', '100ms'), /^ZK_SESSION_TIMEOUT: .*between 1s and 10m/);
  throwsConfig(() => parse('ZK_SESSION_TIMEOUT', '30'), /^ZK_SESSION_TIMEOUT: /);
  assert.equal(ZOOKEEPER_ENV.ZK_AUTH_FILE.secret, true);
  assert.equal(ZOOKEEPER_ENV.ZK_SERVERS.yaml, 'zookeeper.servers');
  assert.equal(ZOOKEEPER_ENV.ZK_PATH.yaml, 'zookeeper.path');
  assert.equal(ZOOKEEPER_ENV.ZK_SESSION_TIMEOUT.yaml, 'zookeeper.session_timeout');
  assert.equal(ZOOKEEPER_ENV.ZK_AUTH_FILE.yaml, 'zookeeper.auth_file');
});

test('settings: undefined when not configured, both halves required, default session timeout', () => {
  assert.equal(zookeeperSettings({}), undefined);
  assert.deepEqual(zookeeperSettings({ ZK_SERVERS: [{ host: 'zk', port: 2181 }, { host: '::1', port: 2182 }], ZK_PATH: '/service_config' }), {
    servers: [
      { host: 'zk', port: 2181 },
      { host: '::1', port: 2182 },
    ],
    connectString: 'zk:2181,[::1]:2182',
    path: '/service_config',
    sessionTimeoutMs: 10_000,
  });
  throwsConfig(() => zookeeperSettings({ ZK_PATH: '/x' }), /^ZK_SERVERS: required/);
  throwsConfig(() => zookeeperSettings({ ZK_SERVERS: [{ host: 'zk', port: 2181 }] }), /^ZK_PATH: required/);
  throwsConfig(() => zookeeperSettings({ ZK_AUTH_FILE: '/run/secrets/zk' }), /^ZK_AUTH_FILE: /);
});

test('auth file: user:password, errors never show the content', () => {
  assert.deepEqual(readZookeeperAuth('/f', () => 'pilot:s3cret:with:colons\n'), { user: 'pilot', password: 's3cret:with:colons' });
  for (const bad of ['nocolonXYZ', ':pwXYZ', 'userXYZ:', 'user:passXYZ word', 'user:pwXYZ\nmore']) {
    assert.throws(
      () => readZookeeperAuth('/f', () => bad),
      (err: unknown) => err instanceof PilotError && /^ZK_AUTH_FILE: \/f /.test(err.message) && !err.message.includes('XYZ'),
      bad,
    );
  }
  throwsConfig(
    () =>
      readZookeeperAuth('/nope', () => {
        throw Object.assign(new Error('x'), { code: 'ENOENT' });
      }),
    /^ZK_AUTH_FILE: \/nope cannot be read \(ENOENT\)$/,
  );
});
