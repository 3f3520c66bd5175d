/**
 * The embedded default's helper program: a tiny HTTP server that haproxy-pilot supervises and
 * HAProxy balances to, so `npm start` (and a bare `FROM haproxy-pilot` image) shows the whole
 * chain working. `GET /delay/<ms>` answers after a delay, to watch a graceful stop finish an
 * in-flight request.
 */
import { createServer } from 'node:http';

export function startDemoBackend(port: number, host = '127.0.0.1'): Promise<{ close(): Promise<void>; port: number }> {
  const server = createServer((req, res) => {
    const delay = /^\/delay\/(\d{1,6})$/.exec(req.url ?? '');
    const answer = () => {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end(`hello from the haproxy-pilot demo backend (pid ${process.pid}) ${req.method} ${req.url}\n`);
    };
    if (delay) setTimeout(answer, Number(delay[1]));
    else answer();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      const address = server.address();
      resolve({
        port: typeof address === 'object' && address ? address.port : port,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}
