/**
 * A PROTOCOL FIXTURE that follows Sidecar's wire format. It is NOT a real Sidecar: Sidecar is a Go
 * program (github.com/NinesStack/sidecar) that cannot be installed on this machine, so the e2e
 * tests talk to this small server instead. It follows shared/reference/seed-systems-and-runtime-api.md
 * section A and Sidecar's source as cited there:
 *
 *  - `GET /api/state.json` and the deprecated `GET /state.json`: the whole ServicesState, keys in
 *    Sidecar's order (Servers, LastChanged, ClusterName, Hostname; Service: ID, Name, Image, Created,
 *    Hostname, Ports, Updated, ProxyMode, Status; Port: Type, Port, ServicePort, IP), timestamps as
 *    Go's RFC 3339 with nanoseconds, Status as an integer; `Content-Type: application/json` and
 *    `Access-Control-Allow-Origin: *`. Any other extension answers 404 `{"status":"error","message":…}`.
 *  - `GET /api/watch` and the deprecated `GET /watch`: a response that stays open, with one JSON
 *    document written at once and one more after every state change, flushed each time, with
 *    nothing between documents (json.Marshal). Default payload: the by-service map
 *    `{name: [Service…]}`; `?by_service=false` streams the whole state.
 *  - Changes fire only on a status transition or a first sighting (PreviousStatus 3 = Unknown for a
 *    new service); LastChanged, the host's LastChanged/LastUpdated and the service's Updated take
 *    the change time. A removed container becomes a Tombstone (Status 1), as in Sidecar.
 *  - Pushes to listener URLs (`LISTENERS_URLS`), as catalog/url_listener.go does them: one 20-event
 *    buffer per listener, notification non-blocking (an event that finds the buffer full is
 *    dropped and recorded in `dropped`), events sent one at a time, the StateChangedEvent
 *    `{State, ChangeEvent: {Service, PreviousStatus, Time}}` encoded when the event is SENT (Sidecar
 *    marshals the live state under its lock at that moment), POST with `Content-Type:
 *    application/json`, a 3 s client timeout, any non-2xx a failure, up to 6 attempts sleeping
 *    100 ms × i for i = -1…4 (0, 0, 100, 200, 300, 400 ms), and the `sidecar-session-host` cookie.
 *    Sidecar's retry re-posts the bytes.Buffer the first attempt drained, so EVERY RETRY CARRIES AN
 *    EMPTY BODY (Content-Length: 0); the fixture reproduces that bug on purpose.
 *
 * Test controls that a real Sidecar does not have: `failNextAttempts` (the next attempts to a
 * listener fail at the network level without reaching it, as a dropped connection would),
 * `hold`/`release` (stop sending, to fill the buffer), `fault` on state.json (500, garbage, hang),
 * `stop`/`start` (restart on the same port, keeping the state as a restarted Sidecar re-learns it
 * from its cluster), and the `deliveries` log.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { request } from 'undici';

export interface FixturePortInput {
  Type?: string;
  Port: number;
  ServicePort?: number;
  IP?: string;
}

export interface FixtureServiceInput {
  /** The Sidecar host announcing it (the key under Servers, and the service's Hostname). */
  host: string;
  id: string;
  name: string;
  ports: FixturePortInput[];
  proxyMode?: string;
  status?: number;
  image?: string;
}

export interface FixtureService {
  ID: string;
  Name: string;
  Image: string;
  Created: string;
  Hostname: string;
  Ports: { Type: string; Port: number; ServicePort: number; IP: string }[];
  Updated: string;
  ProxyMode: string;
  Status: number;
}

interface FixtureServer {
  Name: string;
  Services: Record<string, FixtureService>;
  LastUpdated: string;
  LastChanged: string;
}

export interface FixtureState {
  Servers: Record<string, FixtureServer>;
  LastChanged: string;
  ClusterName: string;
  Hostname: string;
}

export interface Delivery {
  url: string;
  /** 1 = first attempt (with the body), 2..6 = retries (empty body). */
  attempt: number;
  bodyBytes: number;
  cookie: string;
  status?: number;
  error?: string;
}

export type StateFault = 'none' | '500' | 'garbage' | 'hang';

interface ChangeEvent {
  Service: FixtureService;
  PreviousStatus: number;
  Time: string;
}

interface Listener {
  url: string;
  cookie: string;
  queue: ChangeEvent[];
  failNext: number;
  busy: boolean;
}

const BUFFER = 20; // LISTENER_EVENT_BUFFER_SIZE
const ATTEMPTS = 6; // DefaultRetries 5, loop from -1
const CLIENT_TIMEOUT_MS = 3000;

/** Go's time.Time JSON (RFC3339Nano: fraction without trailing zeros, none when zero). */
export function goTime(ns: bigint): string {
  const ms = ns / 1_000_000n;
  const frac = (ns % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  const base = new Date(Number(ms)).toISOString().slice(0, 19);
  return `${base}${frac === '' ? '' : `.${frac}`}Z`;
}

export interface SidecarFixture {
  readonly url: string;
  readonly port: number;
  /** `127.0.0.1:<port>`, what `-F` takes. */
  readonly hostPort: string;
  readonly deliveries: Delivery[];
  readonly dropped: { url: string; service: string }[];
  /** Requests served, e.g. `GET /api/state.json 200`. */
  readonly requests: string[];
  fault: StateFault;
  add(input: FixtureServiceInput): FixtureService;
  setStatus(id: string, status: number): void;
  /** The container went away: Sidecar tombstones the record (Status 1). */
  remove(id: string): void;
  /**
   * Test control: puts a raw record (any JSON, wrong types included) under Servers/<host>/Services/<id>
   * and fires a change, as a buggy or hostile Sidecar would serve and push it.
   */
  inject(host: string, id: string, record: unknown): void;
  state(): FixtureState;
  stateJson(): string;
  /** A StateChangedEvent body for the current state, as Sidecar would send it about `id`. */
  eventBody(id: string, previousStatus?: number): string;
  addListener(url: string): void;
  failNextAttempts(url: string, n: number): void;
  hold(): void;
  release(): void;
  /** Resolves when every listener has sent everything queued. */
  settle(): Promise<void>;
  watchers(): number;
  stop(): Promise<void>;
  start(): Promise<void>;
  close(): Promise<void>;
}

export async function startSidecarFixture(options: { hostname?: string; clusterName?: string; retryUnitMs?: number } = {}): Promise<SidecarFixture> {
  const hostname = options.hostname ?? 'sidecar-fixture';
  const retryUnitMs = options.retryUnitMs ?? 100;
  let lastNs = 0n;
  const now = (): string => {
    const t = BigInt(Date.now()) * 1_000_000n;
    lastNs = t > lastNs ? t : lastNs + 1n;
    return goTime(lastNs);
  };
  const state: FixtureState = { Servers: {}, LastChanged: goTime(0n), ClusterName: options.clusterName ?? 'default', Hostname: hostname };
  const listeners: Listener[] = [];
  const watchStreams = new Set<{ res: ServerResponse; byService: boolean }>();
  const sockets = new Set<Socket>();
  let held = false;
  let settleWaiters: (() => void)[] = [];

  const find = (id: string): FixtureService => {
    for (const server of Object.values(state.Servers)) {
      const svc = server.Services[id];
      if (svc !== undefined) return svc;
    }
    throw new Error(`fixture: no service ${id}`);
  };

  const byService = (): Record<string, FixtureService[]> => {
    const out: Record<string, FixtureService[]> = {};
    for (const host of Object.keys(state.Servers).sort()) {
      const services = state.Servers[host]!.Services;
      for (const id of Object.keys(services).sort()) (out[services[id]!.Name] ??= []).push(services[id]!);
    }
    return out;
  };

  function writeWatch(w: { res: ServerResponse; byService: boolean }): void {
    w.res.write(JSON.stringify(w.byService ? byService() : state));
  }

  /** Timestamps move and watchers and listeners hear of it (Sidecar's ServiceChanged + NotifyListeners). */
  function notify(host: string, service: FixtureService, previousStatus: number, t = now()): void {
    const server = state.Servers[host]!;
    server.LastUpdated = t;
    server.LastChanged = t;
    state.LastChanged = t;
    const event: ChangeEvent = { Service: structuredClone(service), PreviousStatus: previousStatus, Time: t };
    for (const w of watchStreams) writeWatch(w);
    for (const l of listeners) {
      if (l.queue.length >= BUFFER) {
        fixture.dropped.push({ url: l.url, service: String(service?.ID) }); // "Can't notify listener"
        continue;
      }
      l.queue.push(event);
      void pump(l);
    }
  }

  /** A status transition or a first sighting. */
  function changed(svc: FixtureService, previousStatus: number): void {
    const t = now();
    svc.Updated = t;
    notify(svc.Hostname, svc, previousStatus, t);
  }

  async function post(l: Listener, body: string, attempt: number): Promise<boolean> {
    const d: Delivery = { url: l.url, attempt, bodyBytes: Buffer.byteLength(body), cookie: l.cookie };
    fixture.deliveries.push(d);
    if (l.failNext > 0) {
      l.failNext--;
      d.error = 'connection reset (injected by the fixture)';
      return false;
    }
    try {
      const res = await request(l.url, {
        method: 'POST',
        body,
        headers: { 'content-type': 'application/json', cookie: l.cookie },
        signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS),
      });
      await res.body.dump().catch(() => undefined);
      d.status = res.statusCode;
      return res.statusCode >= 200 && res.statusCode <= 299;
    } catch (err) {
      d.error = (err as Error).message;
      return false;
    }
  }

  async function pump(l: Listener): Promise<void> {
    if (l.busy) return;
    l.busy = true;
    try {
      while (!held && l.queue.length > 0) {
        const event = l.queue.shift()!;
        const data = JSON.stringify({ State: state, ChangeEvent: event });
        // withRetries: i from -1 to 4; only the first attempt has the body (the drained-buffer bug).
        for (let i = -1; i < ATTEMPTS - 1; i++) {
          if (await post(l, i === -1 ? data : '', i + 2)) break;
          if (i > 0) await new Promise((r) => setTimeout(r, retryUnitMs * i));
        }
      }
    } finally {
      l.busy = false;
      if (listeners.every((x) => !x.busy && (held || x.queue.length === 0))) {
        const waiters = settleWaiters;
        settleWaiters = [];
        for (const w of waiters) w();
      }
    }
  }

  function jsonError(res: ServerResponse, status: number, message: string): void {
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ status: 'error', message }));
  }

  function handle(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '/', 'http://fixture');
    const path = url.pathname;
    const record = (status: number): void => void fixture.requests.push(`${req.method} ${path} ${status}`);
    const stateMatch = /^(?:\/api)?\/state\.([^/]+)$/.exec(path);
    if (req.method === 'GET' && stateMatch) {
      if (stateMatch[1] !== 'json') {
        record(404);
        return jsonError(res, 404, 'Not Found - Invalid content type extension');
      }
      if (fixture.fault === 'hang') return record(0);
      if (fixture.fault === '500') {
        record(500);
        return jsonError(res, 500, 'Internal Server Error - Something went terribly wrong');
      }
      record(200);
      const headers = { 'content-type': 'application/json', 'access-control-allow-origin': '*', 'access-control-allow-methods': 'GET' };
      res.writeHead(200, headers).end(fixture.fault === 'garbage' ? '<html>502 Bad Gateway</html>' : JSON.stringify(state));
      return;
    }
    if (req.method === 'GET' && (path === '/api/watch' || path === '/watch')) {
      record(200);
      res.writeHead(200, { 'content-type': 'application/json' });
      const w = { res, byService: url.searchParams.get('by_service') !== 'false' };
      watchStreams.add(w);
      res.on('close', () => watchStreams.delete(w));
      writeWatch(w); // the first document at once
      return;
    }
    record(404);
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404 page not found\n');
  }

  let server: Server | undefined;
  let port = 0;
  async function listen(): Promise<void> {
    const s = createServer(handle);
    s.on('connection', (sock) => {
      sockets.add(sock);
      sock.on('close', () => sockets.delete(sock));
    });
    await new Promise<void>((resolve, reject) => {
      s.once('error', reject);
      s.listen(port, '127.0.0.1', resolve);
    });
    port = (s.address() as AddressInfo).port;
    server = s;
  }

  const fixture: SidecarFixture = {
    get url() {
      return `http://127.0.0.1:${port}`;
    },
    get port() {
      return port;
    },
    get hostPort() {
      return `127.0.0.1:${port}`;
    },
    deliveries: [],
    dropped: [],
    requests: [],
    fault: 'none',
    add(input) {
      const server = (state.Servers[input.host] ??= { Name: input.host, Services: {}, LastUpdated: goTime(0n), LastChanged: goTime(0n) });
      const svc: FixtureService = {
        ID: input.id,
        Name: input.name,
        Image: input.image ?? `registry.example.com/${input.name}:1.0`,
        Created: goTime(lastNs),
        Hostname: input.host,
        Ports: input.ports.map((p) => ({ Type: p.Type ?? 'tcp', Port: p.Port, ServicePort: p.ServicePort ?? 0, IP: p.IP ?? '127.0.0.1' })),
        Updated: '',
        ProxyMode: input.proxyMode ?? 'http',
        Status: input.status ?? 0,
      };
      server.Services[input.id] = svc;
      changed(svc, 3);
      return structuredClone(svc);
    },
    setStatus(id, status) {
      const svc = find(id);
      if (svc.Status === status) return; // no transition, no event
      const previous = svc.Status;
      svc.Status = status;
      changed(svc, previous);
    },
    remove(id) {
      fixture.setStatus(id, 1);
    },
    inject(host, id, record) {
      const server = (state.Servers[host] ??= { Name: host, Services: {}, LastUpdated: goTime(0n), LastChanged: goTime(0n) });
      (server.Services as Record<string, unknown>)[id] = record;
      notify(host, record as FixtureService, 3);
    },
    state: () => structuredClone(state),
    stateJson: () => JSON.stringify(state),
    eventBody(id, previousStatus = 3) {
      const svc = find(id);
      return JSON.stringify({ State: state, ChangeEvent: { Service: svc, PreviousStatus: previousStatus, Time: state.LastChanged } });
    },
    addListener(url) {
      listeners.push({ url, cookie: `sidecar-session-host=${hostname}-${goTime(BigInt(Date.now()) * 1_000_000n)}`, queue: [], failNext: 0, busy: false });
    },
    failNextAttempts(url, n) {
      const l = listeners.find((x) => x.url === url);
      if (l === undefined) throw new Error(`fixture: no listener ${url}`);
      l.failNext += n;
    },
    hold() {
      held = true;
    },
    release() {
      held = false;
      for (const l of listeners) void pump(l);
    },
    settle: () =>
      new Promise<void>((resolve) => {
        if (listeners.every((x) => !x.busy && (held || x.queue.length === 0))) resolve();
        else settleWaiters.push(resolve);
      }),
    watchers: () => watchStreams.size,
    async stop() {
      const s = server;
      server = undefined;
      if (s === undefined) return;
      for (const w of watchStreams) w.res.destroy();
      watchStreams.clear();
      for (const sock of sockets) sock.destroy();
      await new Promise<void>((resolve) => s.close(() => resolve()));
    },
    async start() {
      if (server !== undefined) return;
      await listen();
    },
    async close() {
      held = true;
      await fixture.stop();
    },
  };
  await listen();
  return fixture;
}
