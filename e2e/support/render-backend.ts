/**
 * A tiny HTTP or HTTPS backend for the render/apply end-to-end tests and the reload benchmark,
 * run as a separate process (often as a haproxy-pilot `PROGRAM_…` helper, so it lives in the
 * test's namespaces). It answers every request with JSON naming itself and echoing the Host
 * header and path, so a test can tell which backend served a request and what HAProxy sent.
 *
 *   node render-backend.js --name NAME --port PORT[,PORT…] [--cert FILE --key FILE]
 *
 * Several ports: one listener each, same answer (the benchmark uses it for a few backends in
 * one process). Listens on 127.0.0.1 only. Exits on SIGTERM/SIGINT.
 */
import { createServer as createHttp, type IncomingMessage, type ServerResponse } from 'node:http';
import { createServer as createHttps } from 'node:https';
import { readFileSync } from 'node:fs';

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const name = arg('name') ?? 'backend';
const ports = (arg('port') ?? '').split(',').filter(Boolean).map(Number);
const cert = arg('cert');
const key = arg('key');
if (ports.length === 0 || ports.some((p) => !Number.isInteger(p) || p <= 0)) {
  process.stderr.write('usage: render-backend --name NAME --port PORT[,PORT…] [--cert FILE --key FILE]\n');
  process.exit(64);
}

const handler = (port: number) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  const body = `${JSON.stringify({ server: name, port, host: req.headers.host ?? null, path: req.url ?? '/' })}\n`;
  res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(req.method === 'HEAD' ? undefined : body);
};

const servers = ports.map((port) => {
  const server = cert && key ? createHttps({ cert: readFileSync(cert), key: readFileSync(key) }, handler(port)) : createHttp(handler(port));
  // HAProxy keeps idle server connections for reuse; keep them longer than its own timeouts
  // would close them, so a closed idle connection is never what a test or the benchmark sees.
  server.keepAliveTimeout = 60_000;
  server.listen({ host: '127.0.0.1', port }, () => process.stdout.write(`${name} listening on 127.0.0.1:${port}${cert ? ' (tls)' : ''}\n`));
  return server;
});

const stop = () => {
  for (const s of servers) s.close();
  for (const s of servers) s.closeAllConnections();
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
