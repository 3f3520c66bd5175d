/**
 * ZooKeeper's other end inside a test's network namespace (`ip netns exec … node
 * seeds-zookeeper-main.js`), where the members run (seeds-zookeeper.ts): four-letter words, an
 * admin client that writes nodes, and TCP proxies the test can cut (session expiry).
 *
 * Protocol: prints `{"ready":true}`, then reads JSON commands on stdin, one a line, and answers
 * each on stdout with `{"id", "ok", …}` (`ok: false` with `error` when it failed):
 *   {"id":1,"op":"fourLetter","port":2181,"word":"srvr"}   → {"answer":"…"}
 *   {"id":2,"op":"connect","connect":"127.0.0.1:2181,…"}   (the admin client, once)
 *   {"id":3,"op":"put","path":"/a/b","data":{…} or "text"} (parents made as needed)
 *   {"id":4,"op":"remove","path":"/a/b"}  {"op":"removeTree","path":"/a"}
 *   {"id":5,"op":"proxy","port":2181}                       → {"proxy":1,"port":<listening port>}
 *   {"id":6,"op":"proxyPause","proxy":1}  {"op":"proxyResume","proxy":1}
 * Admin writes are retried while the client reconnects (a member the test killed).
 */
import { createInterface } from 'node:readline';
import { startTcpProxy, type TcpProxy } from './sources-etcd.js';
import { fourLetterWord, zkAdmin, zkModule, type ZkAdmin } from './zookeeper.js';

interface Command {
  id?: number;
  op: string;
  port?: number;
  word?: string;
  connect?: string;
  path?: string;
  data?: string | object;
  proxy?: number;
}

let admin: ZkAdmin | undefined;
const proxies = new Map<number, TcpProxy>();

/** Retries an admin write while the connection is lost (the client moves to another member). */
async function retrying<T>(fn: () => Promise<T>): Promise<T> {
  const zk = zkModule();
  const transient = new Set([zk.Exception.CONNECTION_LOSS, zk.Exception.OPERATION_TIMEOUT]);
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      const code = (err as { getCode?: () => number }).getCode?.();
      if (code === undefined || !transient.has(code) || attempt >= 50) throw err;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

async function apply(cmd: Command): Promise<Record<string, unknown>> {
  const need = (): ZkAdmin => {
    if (admin === undefined) throw new Error('not connected');
    return admin;
  };
  switch (cmd.op) {
    case 'fourLetter':
      return { answer: await fourLetterWord(cmd.port!, cmd.word!, 1000) };
    case 'connect':
      admin ??= await zkAdmin(cmd.connect!);
      return {};
    case 'put':
      await retrying(() => need().put(cmd.path!, cmd.data!));
      return {};
    case 'remove':
      await retrying(() => need().remove(cmd.path!));
      return {};
    case 'removeTree':
      await retrying(() => need().removeTree(cmd.path!));
      return {};
    case 'proxy': {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: cmd.port! });
      const id = proxies.size + 1;
      proxies.set(id, proxy);
      return { proxy: id, port: Number(new URL(proxy.url).port) };
    }
    case 'proxyPause':
      await proxies.get(cmd.proxy!)!.pause();
      return {};
    case 'proxyResume':
      await proxies.get(cmd.proxy!)!.resume();
      return {};
    default:
      throw new Error(`unknown op ${cmd.op}`);
  }
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
const rl = createInterface({ input: process.stdin });
rl.on('line', (line) => {
  if (line.trim() === '') return;
  let cmd: Command;
  try {
    cmd = JSON.parse(line) as Command;
  } catch {
    process.stdout.write(`${JSON.stringify({ ok: false, error: 'not JSON' })}\n`);
    return;
  }
  apply(cmd).then(
    (answer) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: true, ...answer })}\n`),
    (err) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: false, error: String(err) })}\n`),
  );
});
// The test ends us by pid; stdin closing (the test process died) ends us too.
rl.on('close', () => {
  void Promise.all([admin?.close(), ...[...proxies.values()].map((p) => p.close())]).finally(() => process.exit(0));
});
