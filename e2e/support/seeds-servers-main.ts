/**
 * Standalone test servers to run inside a network namespace: each argument is
 * `http:<name>@<ip>:<port>` (answers every request with `<name>\n`), `sick:<name>@<ip>:<port>` (the
 * same, but 503 on `/health`: a health check with that path marks it down) or `echo:<name>@<ip>:<port>`
 * (a TCP server that answers `<name>:` followed by what it received). Binding addresses such as
 * 127.0.0.2 works because the whole 127.0.0.0/8 is on `lo`, which lets several servers share one
 * port the way containers behind a DNS name do. Prints `{"ready":true}` once every one listens.
 */
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Server } from 'node:net';

const servers: Server[] = [];
for (const spec of process.argv.slice(2)) {
  const m = /^(http|sick|echo):([\w.-]+)@([\d.]+):(\d+)$/.exec(spec);
  if (!m) throw new Error(`bad server spec ${spec}`);
  const [, kind, name, host, port] = m;
  const server =
    kind === 'http' || kind === 'sick'
      ? createHttpServer((req, res) => {
          req.resume();
          const sick = kind === 'sick' && req.url === '/health';
          res.writeHead(sick ? 503 : 200, { 'content-type': 'text/plain', connection: 'close' }).end(`${name}\n`);
        })
      : createTcpServer((sock) => {
          sock.on('error', () => undefined);
          // The name first, then an echo: the test sees which server it reached and that bytes flow both ways.
          sock.write(`${name}:`);
          sock.pipe(sock);
        });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(Number(port), host, () => resolve());
  });
  servers.push(server);
}
process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
