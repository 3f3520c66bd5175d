import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBoundedOutput, type WriteFn } from './output.js';

/** A fake fd: writes complete only when the test says so, taking `accept` bytes each. */
function fakeFd() {
  const written: string[] = [];
  const pending: { buffer: Buffer; callback: (err: NodeJS.ErrnoException | null, n: number) => void }[] = [];
  const write: WriteFn = (_fd, buffer, callback) => void pending.push({ buffer, callback });
  const complete = (accept = Infinity, err?: string) => {
    const next = pending.shift();
    if (!next) return false;
    if (err) next.callback(Object.assign(new Error(err), { code: err }), 0);
    else {
      const n = Math.min(accept, next.buffer.length);
      written.push(next.buffer.subarray(0, n).toString());
      next.callback(null, n);
    }
    return true;
  };
  return { write, written, pending, complete };
}

test('a reader that never reads: writes return at once, the queue stays bounded, drops are counted', async () => {
  const fd = fakeFd();
  const out = createBoundedOutput(1, { maxBytes: 100, write: fd.write });
  const line = `${'x'.repeat(19)}\n`;
  // One write in flight (20 bytes) plus 100 queued; the rest is dropped.
  for (let i = 0; i < 50; i++) out.write(line);
  assert.equal(out.queuedBytes, 100);
  assert.equal(out.dropped, 45);
  assert.equal(await out.flush(50), false, 'flush gives up on a stalled reader');
});

test('order is kept across partial writes and EAGAIN; flush resolves once all is written', async () => {
  const fd = fakeFd();
  const out = createBoundedOutput(1, { write: fd.write, retryMs: 1 });
  out.write('one\n');
  out.write('two\n');
  out.write('three\n');
  const flushed = out.flush(5000);
  fd.complete(2); // "on"
  await new Promise((r) => setImmediate(r));
  fd.complete(Infinity, 'EAGAIN');
  await new Promise((r) => setTimeout(r, 10));
  while (fd.complete()) await new Promise((r) => setImmediate(r));
  assert.equal(await flushed, true);
  assert.equal(fd.written.join(''), 'one\ntwo\nthree\n');
  assert.equal(out.dropped, 0);
  assert.equal(out.queuedBytes, 0);
});

test('a reader that is gone (EPIPE): nothing more is written, everything is counted as dropped, flush does not hang', async () => {
  const fd = fakeFd();
  const out = createBoundedOutput(1, { write: fd.write });
  out.write('a\n');
  out.write('b\n');
  fd.complete(Infinity, 'EPIPE');
  out.write('c\n');
  assert.equal(fd.pending.length, 0);
  assert.equal(out.dropped, 3, 'a (in flight), b (queued) and c');
  assert.equal(await out.flush(1000), true);
});
