/** A SourceSink that records what a source emits, and a log capture, for the sources e2e tests. */
import { Writable } from 'node:stream';
import { createLogger, type Logger } from '../../src/log.js';
import type { Snapshot, SourceSink } from '../../src/sources/source.js';

export interface RecordingSink extends SourceSink {
  snapshots: Snapshot[];
  errors: Error[];
  /** Resolves with the first snapshot (counting from `from`) that satisfies `pred`; rejects after `ms`. */
  waitSnapshot(pred: (s: Snapshot) => boolean, ms?: number, from?: number): Promise<Snapshot>;
  waitError(pred: (e: Error) => boolean, ms?: number, from?: number): Promise<Error>;
}

function waitFor<T>(list: T[], pred: (x: T) => boolean, ms: number, from: number, what: string): Promise<T> {
  const deadline = Date.now() + ms;
  return new Promise((resolve, reject) => {
    const tick = (): void => {
      const hit = list.slice(from).find(pred);
      if (hit !== undefined) return resolve(hit);
      if (Date.now() > deadline) return reject(new Error(`no ${what} matched within ${ms} ms (saw ${list.length})`));
      setTimeout(tick, 20);
    };
    tick();
  });
}

export function recordingSink(): RecordingSink {
  const sink: RecordingSink = {
    snapshots: [],
    errors: [],
    snapshot: (s) => void sink.snapshots.push(s),
    error: (e) => void sink.errors.push(e),
    waitSnapshot: (pred, ms = 10_000, from = 0) => waitFor(sink.snapshots, pred, ms, from, 'snapshot'),
    waitError: (pred, ms = 10_000, from = 0) => waitFor(sink.errors, pred, ms, from, 'error'),
  };
  return sink;
}

export function capturedLogger(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString('utf8').split('\n').filter((l) => l !== ''));
      cb();
    },
  });
  return { log: createLogger({ level: 'debug', format: 'json', destination }), lines };
}

/** Server names of one backend in a snapshot, sorted. */
export function serverList(s: Snapshot, backend: string): string[] {
  return (s.backends.find((b) => b.name === backend)?.servers ?? []).map((x) => `${x.name}=${x.host}:${x.port}`).sort();
}
