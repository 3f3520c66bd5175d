/**
 * The ZooKeeper scenarios of bench/change-latency.ts (seed 004, ProxyMgr's schema), against real
 * ZooKeeper (Debian's, started here through e2e/support/zookeeper.ts: one member on a free
 * loopback port of the benchmark's network namespace, stopped with the scenario). Each write is
 * one ZooKeeper transaction, so the old and the new state are never seen half-way.
 *
 * - server: service `web` (port 5200) has one server node; sample k replaces s<k-1>'s node by
 *   s<k>'s. The pilot applies it through the runtime API (maint + add server, no reload).
 * - service: sample k creates service svc<k> (port 5300+k) with its server node and removes
 *   svc<k-1>. The pilot reloads (a new listen section).
 */
import { performance } from 'node:perf_hooks';
import type * as ZK from 'node-zookeeper-client';
import { startZookeeper, zkAdmin, type ZkAdmin } from '../e2e/support/zookeeper.js';
import { firstServedBy, sleep } from './support-latency-probe.js';
import { pauseMs, startPilot, type Scenario } from './support-latency-scenarios.js';

const ROOT = '/bench';
const CONFIG = `${ROOT}/service_config`;

function commit(tx: ZK.Transaction): Promise<void> {
  return new Promise((resolve, reject) => tx.commit((err) => (err ? reject(err) : resolve())));
}

const json = (o: object): Buffer => Buffer.from(JSON.stringify(o));

/** A standalone ZooKeeper, an admin client, and haproxy-pilot watching CONFIG; `body` takes samples. */
async function withZookeeper(body: (admin: ZkAdmin) => Promise<number[]>, setup: (admin: ZkAdmin) => Promise<void>): Promise<number[]> {
  const zk = await startZookeeper(1);
  try {
    const admin = await zkAdmin(zk.connectString);
    try {
      await setup(admin);
      const pilot = await startPilot({ ZK_SERVERS: zk.connectString, ZK_PATH: CONFIG });
      try {
        return await body(admin);
      } finally {
        await pilot.stop();
      }
    } finally {
      await admin.close();
    }
  } finally {
    await zk.close();
  }
}

export function pilotZookeeperServer(name: string, how: string, samples: number, pause: [number, number]): Scenario {
  return {
    name,
    how,
    samples,
    pause,
    run: (e, n, p) => {
      const server = (k: number) => ({ address: '127.0.0.1', port: e.servers.port(`s${k}`) });
      return withZookeeper(
        async (admin) => {
          await firstServedBy('s0', { port: 5200 }, 30_000, 20);
          const out: number[] = [];
          for (let k = 1; k <= n; k++) {
            await sleep(pauseMs(p));
            const t0 = performance.now();
            await commit(admin.client.transaction().create(`${ROOT}/web/s${k}`, json(server(k))).remove(`${ROOT}/web/s${k - 1}`));
            out.push((await firstServedBy(`s${k}`, { port: 5200 }, 30_000)) - t0);
          }
          return out;
        },
        async (admin) => {
          await admin.put(`${ROOT}/web/s0`, server(0));
          await admin.put(`${CONFIG}/web`, { type: 'zookeeper', path: `${ROOT}/web`, port: 5200, listen_options: ['mode http'] });
        },
      );
    },
  };
}

export function pilotZookeeperService(name: string, how: string, samples: number, pause: [number, number]): Scenario {
  return {
    name,
    how,
    samples,
    pause,
    run: (e, n, p) => {
      const blob = (k: number) => ({ type: 'zookeeper', path: `${ROOT}/svc/svc${k}`, port: 5300 + k, listen_options: ['mode http'] });
      const server = (k: number) => ({ address: '127.0.0.1', port: e.servers.port(`s${k}`) });
      return withZookeeper(
        async (admin) => {
          await firstServedBy('s0', { port: 5300 }, 30_000, 20);
          const out: number[] = [];
          for (let k = 1; k <= n; k++) {
            await sleep(pauseMs(p));
            const t0 = performance.now();
            const tx = admin.client
              .transaction()
              .create(`${ROOT}/svc/svc${k}`)
              .create(`${ROOT}/svc/svc${k}/a`, json(server(k)))
              .create(`${CONFIG}/svc${k}`, json(blob(k)))
              .remove(`${CONFIG}/svc${k - 1}`);
            await commit(tx);
            out.push((await firstServedBy(`s${k}`, { port: 5300 + k }, 30_000)) - t0);
          }
          return out;
        },
        async (admin) => {
          await admin.put(`${ROOT}/svc/svc0/a`, server(0));
          await admin.put(`${CONFIG}/svc0`, blob(0));
        },
      );
    },
  };
}
