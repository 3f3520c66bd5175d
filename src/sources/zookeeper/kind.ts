/** ZooKeeper with ProxyMgr's schema (seed 004): `ZK_SERVERS`, `ZK_PATH`, digest auth. */
import type { Layers } from '../../config/layers.js';
import type { SourceKind } from '../kind.js';
import { zookeeperSettings, ZOOKEEPER_ENV, type ZookeeperSettings } from './settings.js';

function load(L: Layers<typeof ZOOKEEPER_ENV>): ZookeeperSettings | undefined {
  const servers = L.opt('ZK_SERVERS');
  const path = L.opt('ZK_PATH');
  const authFile = L.opt('ZK_AUTH_FILE');
  try {
    return zookeeperSettings({
      ...(servers === undefined ? {} : { ZK_SERVERS: servers }),
      ...(path === undefined ? {} : { ZK_PATH: path }),
      ZK_SESSION_TIMEOUT: L.get('ZK_SESSION_TIMEOUT'),
      ...(authFile === undefined ? {} : { ZK_AUTH_FILE: authFile }),
    });
  } catch (err) {
    L.fail(err);
    return undefined;
  }
}

export const zookeeperKind: SourceKind<ZookeeperSettings, typeof ZOOKEEPER_ENV> = {
  kind: 'zookeeper',
  env: ZOOKEEPER_ENV,
  load,
  async create(settings, deps) {
    // node-zookeeper-client loads here, only when ZooKeeper is configured.
    const { createZookeeperSource } = await import('./source.js');
    return createZookeeperSource(settings, deps);
  },
};
