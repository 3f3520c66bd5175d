import { test } from 'node:test';
import assert from 'node:assert/strict';
import { jsonDocumentCounter } from './json-stream.js';

const feed = (parts: string[]): number[] => {
  const c = jsonDocumentCounter();
  return parts.map((p) => c.feed(Buffer.from(p)));
};

test("documents back to back, as Sidecar's watch writes them, and split across chunks", () => {
  assert.deepEqual(feed(['{"a":[1,{"b":2}]}{"c":3}']), [2]);
  assert.deepEqual(feed(['{"a":', '[1,2]', '}', '\n{}']), [0, 0, 1, 1]);
  assert.deepEqual(feed(['{"orders":[{"Name":"x"}]}\n', ' {"orders":[]}']), [1, 1]);
});

test('braces and quotes inside strings do not count, escapes included', () => {
  assert.deepEqual(feed(['{"a":"}{\\"}"}', '{"b":"\\\\"}']), [1, 1]);
  assert.deepEqual(feed(['{"a":"\\', '"}"}']), [0, 1]);
});

test('a stream that is not a series of objects is an error', () => {
  assert.throws(() => feed(['}']), /unbalanced/);
  assert.throws(() => feed(['"x"']), /not an object/);
  assert.throws(() => feed(['{}x']), /not an object/);
  assert.deepEqual(feed(['[1,2]']), [1], 'arrays are documents too');
});
