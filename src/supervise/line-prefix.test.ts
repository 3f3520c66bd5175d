import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { MAX_LINE, pipeLines } from './line-prefix.js';
import { resolveIdentity } from './identity.js';
import { isPilotError } from '../errors.js';

test('pipeLines: CRLF, split UTF-8, unterminated last line, over-long lines', async () => {
  const got: string[] = [];
  const s = new PassThrough();
  pipeLines(s, '[p] ', { write: (x: string) => got.push(x) });
  const euro = Buffer.from('€');
  s.write(Buffer.concat([Buffer.from('a\r\nb'), euro.subarray(0, 1)]));
  s.write(Buffer.concat([euro.subarray(1), Buffer.from('\n')]));
  s.write('x'.repeat(MAX_LINE + 5));
  s.end('tail');
  await new Promise((r) => s.on('end', r));
  assert.deepEqual(got, ['[p] a\n', '[p] b€\n', `[p] ${'x'.repeat(MAX_LINE)}\n`, '[p] xxxxxtail\n']);
});

test('resolveIdentity: names, numeric ids, unknown names', () => {
  const files = { passwd: 'app:x:1000:1001::/home/app:/bin/sh\n', group: 'staff:x:50:\n' };
  assert.deepEqual(resolveIdentity('app', undefined, files, 'p'), { uid: 1000, gid: 1001 });
  assert.deepEqual(resolveIdentity('app', 'staff', files, 'p'), { uid: 1000, gid: 50 });
  assert.deepEqual(resolveIdentity('1234', '77', files, 'p'), { uid: 1234, gid: 77 });
  assert.deepEqual(resolveIdentity(undefined, 'staff', files, 'p'), { gid: 50 });
  assert.throws(() => resolveIdentity('ghost', undefined, files, 'program x'), (e) => isPilotError(e, 'E_PROGRAM') && /program x: user "ghost"/.test(e.message));
  assert.throws(() => resolveIdentity(undefined, 'ghosts', files, 'p'), (e) => isPilotError(e, 'E_PROGRAM'));
});
