/**
 * stdout and stderr as haproxy-pilot writes them (its log lines and the prefixed output of helper
 * programs): asynchronous, bounded, never blocking. A container log reader that stalls (a full
 * pipe) must not freeze the control plane, so writes queue in memory up to a bound and what does
 * not fit is dropped and counted (haproxy_pilot_log_dropped_total on /metrics).
 *
 * One writer per file descriptor for the whole process (not a singleton by taste: fd 1 is one
 * resource, and two writers on it could interleave parts of lines after a partial write).
 */
import { write as fsWrite } from 'node:fs';
import { Writable } from 'node:stream';

export interface BoundedOutput {
  /** Queues `chunk`; drops it (and counts it) when the queue is full. Never blocks, never throws. */
  write(chunk: string | Buffer): boolean;
  /** Chunks (log lines) dropped so far. */
  readonly dropped: number;
  readonly queuedBytes: number;
  /** Resolves true once everything queued is written, or false after `timeoutMs` (the reader is gone or stalled). */
  flush(timeoutMs: number): Promise<boolean>;
}

export type WriteFn = (fd: number, buffer: Buffer, callback: (err: NodeJS.ErrnoException | null, written: number) => void) => void;

export interface BoundedOutputOptions {
  /** Queue bound in bytes (default 1 MiB). */
  maxBytes?: number;
  /** Delay before retrying a write that failed with EAGAIN (a non-blocking fd that is full). Default 50 ms. */
  retryMs?: number;
  /** fs.write; tests inject a fake. */
  write?: WriteFn;
}

const realWrite: WriteFn = (fd, buffer, callback) => fsWrite(fd, buffer, 0, buffer.length, null, callback);

/** At most this much is handed to one write() call. */
const MAX_WRITE = 64 * 1024;

export function createBoundedOutput(fd: number, options: BoundedOutputOptions = {}): BoundedOutput {
  const maxBytes = options.maxBytes ?? 1024 * 1024;
  const retryMs = options.retryMs ?? 50;
  const write = options.write ?? realWrite;
  let queue: Buffer[] = [];
  let queuedBytes = 0;
  let writing = false;
  let broken = false;
  let dropped = 0;
  let idle: (() => void)[] = [];

  function pump(): void {
    if (writing) return;
    if (queue.length === 0 || broken) {
      for (const resolve of idle.splice(0)) resolve();
      return;
    }
    // Coalesce small chunks into one write.
    let size = 0;
    let n = 0;
    while (n < queue.length && (n === 0 || size + queue[n]!.length <= MAX_WRITE)) size += queue[n++]!.length;
    const buffer = n === 1 ? queue[0]! : Buffer.concat(queue.slice(0, n), size);
    queue = queue.slice(n);
    writing = true;
    const attempt = (buf: Buffer): void => {
      write(fd, buf, (err, written) => {
        if (err) {
          if (err.code === 'EAGAIN' || err.code === 'EWOULDBLOCK') {
            setTimeout(() => attempt(buf), retryMs);
            return;
          }
          // EPIPE, EBADF…: nobody will ever read this; stop writing and count what is lost.
          broken = true;
          dropped += 1 + queue.length;
          queuedBytes = 0;
          queue = [];
          writing = false;
          pump();
          return;
        }
        queuedBytes -= written;
        if (written < buf.length) return attempt(buf.subarray(written));
        writing = false;
        pump();
      });
    };
    attempt(buffer);
  }

  return {
    write(chunk) {
      const buf = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
      if (broken || queuedBytes + buf.length > maxBytes) {
        dropped += 1;
        return false;
      }
      queue.push(buf);
      queuedBytes += buf.length;
      pump();
      return true;
    },
    get dropped() {
      return dropped;
    },
    get queuedBytes() {
      return queuedBytes;
    },
    flush(timeoutMs) {
      if (!writing && queue.length === 0) return Promise.resolve(true);
      return new Promise((resolve) => {
        // Not unref'd: it is what ends the wait when nothing else keeps the event loop alive.
        const timer = setTimeout(() => resolve(false), timeoutMs);
        idle.push(() => {
          clearTimeout(timer);
          resolve(true);
        });
      });
    },
  };
}

/** A Writable over a BoundedOutput that never applies backpressure (for stream APIs such as pino-pretty). */
export function asWritable(output: BoundedOutput): Writable {
  return new Writable({
    write(chunk: Buffer, _encoding, callback) {
      output.write(chunk);
      callback();
    },
  });
}

const byFd = new Map<number, BoundedOutput>();

/** The process's writer for fd 1 or 2. */
export function processOutput(fd: 1 | 2): BoundedOutput {
  let out = byFd.get(fd);
  if (!out) {
    out = createBoundedOutput(fd);
    byFd.set(fd, out);
  }
  return out;
}

/** Lines dropped on stdout and stderr since start. */
export function outputDropped(): number {
  let n = 0;
  for (const out of byFd.values()) n += out.dropped;
  return n;
}

/** Before process.exit: write what is queued, but give up after `timeoutMs` (a reader that is gone must not hold the exit). */
export async function flushProcessOutput(timeoutMs: number): Promise<void> {
  await Promise.all([...byFd.values()].map((out) => out.flush(timeoutMs)));
}
