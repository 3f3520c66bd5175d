import net from 'node:net';

/** Below Linux's default ephemeral range (ip_local_port_range 32768–60999). */
const FIRST = 20_000;
const COUNT = 12_000;
const given = new Set<number>();

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.unref();
    srv.once('error', () => resolve(false));
    srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
  });
}

/**
 * A loopback port that was free a moment ago, for a server a test starts. Chosen at random below
 * the ephemeral range: a port the kernel hands out for `listen(0)` comes from the range outgoing
 * connections take their source ports from, so another process's connection could take it before
 * the server binds it (seen once in CI: an etcd member's client port, taken while the other members
 * connected to their peers). Never the same port twice in one process.
 */
export async function freePort(): Promise<number> {
  for (let tries = 0; tries < 500; tries++) {
    const port = FIRST + Math.floor(Math.random() * COUNT);
    if (given.has(port) || !(await bindable(port))) continue;
    given.add(port);
    return port;
  }
  throw new Error(`no free loopback port in ${FIRST}–${FIRST + COUNT - 1}`);
}
