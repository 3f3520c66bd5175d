/**
 * One ZooKeeper session to one ensemble (connect string), through node-zookeeper-client, with
 * what that client does not do on its own:
 *
 *  - Session expiry: the client closes for good; we open a new client (a new session) at once
 *    and tell the owner, who re-reads everything and so re-establishes every watch.
 *  - A server that stops answering without closing the socket (frozen process, partition): the
 *    client has no read timeout (upstream issues #16/#38 and PR #57, never merged) and would
 *    wait forever. A probe (`exists /`) every third of the session timeout; no answer within
 *    two thirds of it, or no connection for a whole session timeout while the client says it is
 *    connecting, and the socket is destroyed, which makes the client move to the next server
 *    and resume the same session (as the Java client does after its read timeout).
 *  - Reads never hang: a read is only sent while connected; a disconnect, expiry or close
 *    answers every outstanding read as `lost` (the owner re-reads after reconnecting), so the
 *    owner's "everything read" gate cannot stick.
 *  - Outage reporting: no connection for `errorAfterMs` → one error per outage.
 * Digest credentials are re-sent by the client on every reconnect; they never reach a log.
 */
import type * as ZK from 'node-zookeeper-client';
import type { Logger } from '../../log.js';
import { PilotError } from '../../errors.js';
import { redact, type SourceClock } from '../common.js';
import type { ZookeeperAuth } from './settings.js';

export type ZkModule = typeof ZK;
export type Watcher = (event: ZK.Event) => void;

export type ReadResult<T> = { ok: true; value: T } | { ok: false; code: string; lost: boolean };

export interface ZkConnectionOptions {
  zk: ZkModule;
  connect: string;
  sessionTimeoutMs: number;
  auth?: ZookeeperAuth;
  log: Logger;
  clock: SourceClock;
  /** Source name, for messages. */
  name: string;
  /** Report an outage after this long without a connection (default: the session timeout). */
  errorAfterMs?: number;
  /** Retry pause between servers when none answered (client's spinDelay; default 200 ms). */
  spinDelayMs?: number;
}

export interface ZkConnectionEvents {
  /** Connected (first time, after a reconnect, or with a new session): re-read what you watch. */
  connected(newSession: boolean): void;
  disconnected(): void;
  /** No connection for errorAfterMs; once per outage. */
  outage(error: PilotError): void;
  /** No read is outstanding any more. */
  settled(): void;
}

interface Outstanding {
  settle(result: ReadResult<never>): void;
}

const LOST = new Set(['CONNECTION_LOSS', 'SESSION_EXPIRED', 'OPERATION_TIMEOUT']);

export class ZkConnection {
  connected = false;
  /** True once an outage was reported and no connection has ended it. */
  inOutage = false;
  private client: ZK.Client | undefined;
  private generation = 0;
  private sessionId = '';
  private readonly outstanding = new Set<Outstanding>();
  private closed = false;
  private watchdog: NodeJS.Timeout | undefined;
  private outageTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private lastTransitionAt = 0;
  private probeSentAt: number | undefined;
  private readonly secrets: (string | undefined)[];

  constructor(
    private readonly o: ZkConnectionOptions,
    private readonly events: ZkConnectionEvents,
  ) {
    this.secrets = [o.auth?.password];
  }

  get connectString(): string {
    return this.o.connect;
  }

  get pending(): number {
    return this.outstanding.size;
  }

  start(): void {
    this.lastTransitionAt = this.o.clock.now();
    this.armOutageTimer();
    this.newClient();
    this.tick();
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.watchdog);
    clearTimeout(this.outageTimer);
    clearTimeout(this.reconnectTimer);
    this.loseOutstanding();
    const client = this.client;
    this.client = undefined;
    if (client === undefined) return;
    const wasConnected = this.connected;
    this.connected = false;
    // A connected client sends closeSession (the server drops our session and watches at once);
    // wait a little for that, then cut the socket so nothing lingers.
    const gone = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, wasConnected ? 1000 : 0);
      client.once('disconnected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    try {
      client.close();
    } catch {
      // already closed
    }
    await gone;
    this.destroySocket(client);
  }

  getChildren(path: string, watcher: Watcher): Promise<ReadResult<string[]>> {
    return this.read<string[]>((c, done) => c.getChildren(path, watcher, (err, children) => done(err, children)));
  }

  getData(path: string, watcher: Watcher): Promise<ReadResult<string>> {
    return this.read<string>((c, done) => c.getData(path, watcher, (err, data) => done(err, data ? data.toString('utf8') : '')));
  }

  /** Whether the node exists, leaving an existence watch. */
  exists(path: string, watcher: Watcher): Promise<ReadResult<boolean>> {
    return this.read<boolean>((c, done) => c.exists(path, watcher, (err, stat) => done(err, Boolean(stat))));
  }

  private read<T>(op: (client: ZK.Client, done: (err: unknown, value?: T) => void) => void): Promise<ReadResult<T>> {
    const client = this.client;
    if (!this.connected || client === undefined) return Promise.resolve({ ok: false, code: 'CONNECTION_LOSS', lost: true });
    return new Promise<ReadResult<T>>((resolve) => {
      let done = false;
      const entry: Outstanding = {
        settle: (result) => {
          if (done) return;
          done = true;
          this.outstanding.delete(entry);
          resolve(result as ReadResult<T>);
          if (this.outstanding.size === 0) queueMicrotask(() => this.events.settled());
        },
      };
      this.outstanding.add(entry);
      try {
        op(client, (err, value) => {
          if (err) {
            const code = errorCode(err);
            entry.settle({ ok: false, code, lost: LOST.has(code) } as ReadResult<never>);
          } else entry.settle({ ok: true, value } as unknown as ReadResult<never>);
        });
      } catch (err) {
        // The client validates paths synchronously; our paths are valid, but never throw out of here.
        entry.settle({ ok: false, code: `BAD_ARGUMENTS (${err instanceof Error ? err.message : String(err)})`, lost: false } as ReadResult<never>);
      }
    });
  }

  private loseOutstanding(): void {
    for (const o of [...this.outstanding]) o.settle({ ok: false, code: 'CONNECTION_LOSS', lost: true } as ReadResult<never>);
  }

  private newClient(): void {
    const gen = ++this.generation;
    const client = this.o.zk.createClient(this.o.connect, {
      sessionTimeout: this.o.sessionTimeoutMs,
      spinDelay: this.o.spinDelayMs ?? 200,
      retries: 0,
    });
    if (this.o.auth !== undefined) client.addAuthInfo('digest', Buffer.from(`${this.o.auth.user}:${this.o.auth.password}`));
    client.on('state', (state: ZK.State) => {
      if (gen === this.generation && !this.closed) this.onState(client, state);
    });
    this.client = client;
    this.probeSentAt = undefined;
    client.connect();
  }

  private onState(client: ZK.Client, state: ZK.State): void {
    const { zk, log, name } = this.o;
    const now = this.o.clock.now();
    this.lastTransitionAt = now;
    if (state === zk.State.SYNC_CONNECTED || state === zk.State.CONNECTED_READ_ONLY) {
      const id = client.getSessionId().toString('hex');
      const newSession = id !== this.sessionId;
      this.sessionId = id;
      this.connected = true;
      this.probeSentAt = undefined;
      clearTimeout(this.outageTimer);
      this.outageTimer = undefined;
      if (this.inOutage) log.info(`${name}: connected to ${this.o.connect} again`);
      else log.debug({ session: id }, `${name}: connected to ${this.o.connect}`);
      this.inOutage = false;
      this.events.connected(newSession);
      return;
    }
    if (state === zk.State.DISCONNECTED) {
      if (!this.connected) return;
      this.connected = false;
      log.info(`${name}: connection to ${this.o.connect} lost; reconnecting (session kept until it expires)`);
      this.loseOutstanding();
      this.armOutageTimer();
      this.events.disconnected();
      return;
    }
    if (state === zk.State.EXPIRED || state === zk.State.AUTH_FAILED) {
      const expired = state === zk.State.EXPIRED;
      this.connected = false;
      this.loseOutstanding();
      this.armOutageTimer();
      log.warn(`${name}: ${expired ? 'session expired' : 'authentication failed'} on ${this.o.connect}; opening a new session`);
      if (!expired) this.events.outage(this.error('authentication failed (check ZK_AUTH_FILE)'));
      this.destroySocket(client);
      // The old client is finished. A new session now (expiry), or after a pause (auth: do not hammer).
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(() => {
        if (!this.closed) this.newClient();
      }, expired ? 0 : Math.max(1000, this.o.sessionTimeoutMs / 2));
    }
  }

  private armOutageTimer(): void {
    if (this.outageTimer !== undefined || this.closed) return;
    const after = this.o.errorAfterMs ?? this.o.sessionTimeoutMs;
    this.outageTimer = setTimeout(() => {
      this.outageTimer = undefined;
      if (this.connected || this.closed) return;
      this.inOutage = true;
      this.o.log.warn(`${this.o.name}: no connection to ${this.o.connect} for ${after} ms; serving the last good data and retrying`);
      this.events.outage(this.error(`no connection to ${this.o.connect} for ${after} ms`));
    }, after);
  }

  private error(what: string): PilotError {
    return new PilotError('E_SOURCE', redact(`${this.o.name}: ${what}`, this.secrets), { details: { source: this.o.name } });
  }

  /** The liveness check the client lacks (see the header comment). */
  private tick(): void {
    if (this.closed) return;
    const timeout = this.client?.getSessionTimeout() || this.o.sessionTimeoutMs;
    const now = this.o.clock.now();
    const client = this.client;
    if (client !== undefined) {
      if (this.connected) {
        if (this.probeSentAt !== undefined && now - this.probeSentAt > (timeout * 2) / 3) {
          this.o.log.warn(`${this.o.name}: no answer from ${this.o.connect} for ${now - this.probeSentAt} ms; moving to another server`);
          this.probeSentAt = undefined;
          this.destroySocket(client);
        } else if (this.probeSentAt === undefined) {
          const sent = now;
          this.probeSentAt = sent;
          try {
            client.exists('/', () => {
              if (this.probeSentAt === sent) this.probeSentAt = undefined;
            });
          } catch {
            this.probeSentAt = undefined;
          }
        }
      } else if (now - this.lastTransitionAt > timeout) {
        // Connecting for a whole session timeout: a server accepted TCP and never answered.
        this.lastTransitionAt = now;
        this.destroySocket(client);
      }
    }
    this.watchdog = setTimeout(() => this.tick(), Math.max(100, Math.floor(timeout / 3)));
  }

  /** Cuts the client's socket; it then reconnects (same session) or, once closed, stays closed. */
  private destroySocket(client: ZK.Client): void {
    const socket = (client as unknown as { connectionManager?: { socket?: { destroy?: () => void } } }).connectionManager?.socket;
    if (typeof socket?.destroy === 'function') socket.destroy();
    else if (client === this.client && !this.closed) {
      // Not the client internals we know: fall back to a new session (everything is re-read).
      try {
        client.close();
      } catch {
        // ignore
      }
      this.newClient();
    }
  }
}

function errorCode(err: unknown): string {
  const e = err as { getName?: () => string; name?: string; code?: unknown };
  const n = typeof e.getName === 'function' ? e.getName() : undefined;
  if (typeof n === 'string' && n !== '') return n;
  return err instanceof Error ? err.message : String(err);
}
