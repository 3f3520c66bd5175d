/**
 * Standalone entry for the seed 000 end-to-end tests, run inside a test's network namespace
 * (`ip netns exec … node seeds-sidecar-main.js <mode>`):
 *
 *  - `sidecar`: the Sidecar PROTOCOL FIXTURE (support/sidecar-fixture.ts; not a real
 *    Sidecar, which cannot be installed here). Prints `{"url": …, "port": …}` once listening.
 *  - `backends <name>@<ip>:<port> …`: the containers Sidecar announces: HTTP servers answering
 *    `<name>\n` with `Connection: close`. A request to `/hold` is held open until the test sends
 *    `release` (an in-flight slow request, for draining); every server counts the requests it
 *    received (health checks, HEAD, left out). Prints `{"ready": true}` once every one listens.
 *
 * Commands, one JSON object a line on stdin, each answered on stdout with `{"id", "ok", …}`:
 *   sidecar:  add {service}, status {id, status}, remove {id}, inject {host, id, record},
 *             listener {url}, fail {url, n}, hold, release, settle, fault {fault},
 *             stop, start, state, event {id}, deliveries, requests
 *   backends: counts → {counts: {name: n}}, held → {held: {name: n}}, release
 */
import { createInterface } from 'node:readline';
import { createServer, type ServerResponse } from 'node:http';
import { startSidecarFixture, type FixtureServiceInput, type SidecarFixture, type StateFault } from './sidecar-fixture.js';

type Command = { id?: number; op: string } & Record<string, unknown>;
type Handler = (cmd: Command) => Promise<Record<string, unknown>> | Record<string, unknown>;

async function sidecar(): Promise<Handler> {
  const fixture: SidecarFixture = await startSidecarFixture();
  process.stdout.write(`${JSON.stringify({ url: fixture.url, port: fixture.port })}\n`);
  return async (cmd) => {
    switch (cmd.op) {
      case 'add':
        return { service: fixture.add(cmd.service as FixtureServiceInput) };
      case 'status':
        fixture.setStatus(String(cmd.serviceId), Number(cmd.status));
        return {};
      case 'remove':
        fixture.remove(String(cmd.serviceId));
        return {};
      case 'inject':
        fixture.inject(String(cmd.host), String(cmd.serviceId), cmd.record);
        return {};
      case 'listener':
        fixture.addListener(String(cmd.url));
        return {};
      case 'fail':
        fixture.failNextAttempts(String(cmd.url), Number(cmd.n));
        return {};
      case 'hold':
        fixture.hold();
        return {};
      case 'release':
        fixture.release();
        return {};
      case 'settle':
        await fixture.settle();
        return {};
      case 'fault':
        fixture.fault = cmd.fault as StateFault;
        return {};
      case 'stop':
        await fixture.stop();
        return {};
      case 'start':
        await fixture.start();
        return {};
      case 'state':
        return { state: fixture.state() };
      case 'event':
        return { body: fixture.eventBody(String(cmd.serviceId)) };
      case 'deliveries':
        return { deliveries: fixture.deliveries, dropped: fixture.dropped };
      case 'requests':
        return { requests: fixture.requests };
      default:
        throw new Error(`unknown op ${cmd.op}`);
    }
  };
}

async function backends(specs: string[]): Promise<Handler> {
  const counts: Record<string, number> = {};
  const held: Record<string, ServerResponse[]> = {};
  for (const spec of specs) {
    const m = /^([\w.-]+)@([\d.]+):(\d+)$/.exec(spec);
    if (!m) throw new Error(`bad backend spec ${spec}`);
    const [, name, host, port] = m as unknown as [string, string, string, string];
    counts[name] = 0;
    held[name] = [];
    const server = createServer((req, res) => {
      req.resume();
      // HAProxy's health checks (HEAD /) are not traffic.
      if (req.method !== 'HEAD') counts[name]!++;
      if (req.url === '/hold') {
        held[name]!.push(res); // answered at the release
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(`${name}\n`);
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(Number(port), host, () => resolve());
    });
  }
  process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
  return (cmd) => {
    switch (cmd.op) {
      case 'counts':
        return { counts };
      case 'held':
        return { held: Object.fromEntries(Object.entries(held).map(([n, list]) => [n, list.length])) };
      case 'release':
        for (const [name, list] of Object.entries(held)) for (const res of list.splice(0)) res.writeHead(200, { 'content-type': 'text/plain', connection: 'close' }).end(`${name}\n`);
        return {};
      default:
        throw new Error(`unknown op ${cmd.op}`);
    }
  };
}

const [mode, ...rest] = process.argv.slice(2);
const handle = mode === 'sidecar' ? await sidecar() : mode === 'backends' ? await backends(rest) : undefined;
if (handle === undefined) throw new Error(`usage: seeds-sidecar-main.js sidecar | backends <name>@<ip>:<port>…`);

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
  Promise.resolve()
    .then(() => handle(cmd))
    .then(
      (answer) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: true, ...answer })}\n`),
      (err: unknown) => process.stdout.write(`${JSON.stringify({ id: cmd.id, ok: false, error: String(err) })}\n`),
    );
});
// The test ends us by pid; stdin closing (the test process died) ends us too.
rl.on('close', () => process.exit(0));
