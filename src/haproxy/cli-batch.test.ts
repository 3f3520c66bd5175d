import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BATCH_CHUNK, runtimeBatch, workerBatch } from './cli-batch.js';
import type { MasterCommandFn } from './master-cli.js';
import { isPilotError } from '../errors.js';

/**
 * A fake CLI in prompt mode, framed as 2.6.12 frames it (cli-batch.ts): the master prints
 * `master> ` before each answer and takes `@1 cmd` lines; a worker prints `\n> ` and takes `cmd`
 * lines, `show info` answering its `pid`. `cut(n)` closes the n-th connection after that many
 * answers, in the middle of the next one; `fail(n)` refuses the n-th connection.
 */
function fakeCli(kind: 'master' | 'worker', { cut = () => undefined, fail = () => false, pid = 42 }: { cut?: (n: number) => number | undefined; fail?: (n: number) => boolean; pid?: number } = {}) {
  const scripts: string[][] = [];
  // 2.6.12: `master> A\n\nmaster> ` and `\n> A\n\n> ` (the worker's first prompt has a line break before it).
  const [first, prompt] = kind === 'master' ? ['master> ', 'master> '] : ['\n> ', '> '];
  const command: MasterCommandFn = async (socket, script) => {
    const lines = script.split('\n').filter((l) => l !== 'prompt' && l !== 'quit');
    const cmds = kind === 'master' ? lines.filter((l) => l.startsWith('@1 ')).map((l) => l.slice(3)) : lines;
    scripts.push(cmds);
    if (fail(scripts.length)) throw Object.assign(new Error(`master CLI ${socket}: "${script}": connect ENOENT`), { cause: new Error('connect ENOENT') });
    const n = cut(scripts.length) ?? cmds.length;
    let out = first;
    for (const c of cmds.slice(0, n)) out += (c === 'show info' ? `Name: HAProxy\nPid: ${pid}\n\n` : `done ${c}\n\n`) + prompt;
    if (n < cmds.length) out += 'don';
    return out;
  };
  return { scripts, command };
}

const commands = (n: number) => Array.from({ length: n }, (_, i) => `set server b/s${i} weight 2`);

test('runtimeBatch: chunks of BATCH_CHUNK commands, one connection each, answers in order', async () => {
  const cmds = Array.from({ length: 2 * BATCH_CHUNK + 7 }, (_, i) => `set server b/s${i} state ready`);
  const m = fakeCli('master');
  const answers = await runtimeBatch('/run/m.sock', cmds, { command: m.command });
  assert.deepEqual(m.scripts.map((s) => s.length), [BATCH_CHUNK, BATCH_CHUNK, 7]);
  assert.deepEqual(answers, cmds.map((c) => `done ${c}`));
});

test('runtimeBatch: what a connection closed before answering is sent again; a master that answers nothing is an error', async () => {
  const cmds = commands(10);
  // The first connection answers 3 commands and is cut in the 4th answer.
  const m = fakeCli('master', { cut: (n) => (n === 1 ? 3 : undefined) });
  assert.deepEqual(await runtimeBatch('/run/m.sock', cmds, { command: m.command }), cmds.map((c) => `done ${c}`));
  assert.deepEqual(m.scripts, [cmds, cmds.slice(3)]);

  const silent = fakeCli('master', { cut: () => 0 });
  await assert.rejects(runtimeBatch('/run/m.sock', cmds, { command: silent.command }), (err) => {
    assert.ok(isPilotError(err, 'E_MASTER_CLI'));
    assert.match(err.message, /^master CLI \/run\/m\.sock: 0 answers for 10 commands \(the connection closed early\)/);
    return true;
  });
  assert.equal(silent.scripts.length, 2);
});

test('workerBatch: each connection first checks the worker answering is the current one, then sends its chunk', async () => {
  const cmds = commands(BATCH_CHUNK + 3);
  const w = fakeCli('worker');
  assert.deepEqual(await workerBatch('/run/w.sock', cmds, 42, { command: w.command }), { answers: cmds.map((c) => `done ${c}`) });
  assert.deepEqual(w.scripts, [['show info', ...cmds.slice(0, BATCH_CHUNK)], ['show info', ...cmds.slice(BATCH_CHUNK)]]);
});

test('workerBatch: stops where the socket is not the current worker or stops answering, with the answers it got', async () => {
  const cmds = commands(BATCH_CHUNK + 3);
  // An old worker still holding the socket after a reload: nothing it is told counts.
  const old = fakeCli('worker', { pid: 41 });
  assert.deepEqual(await workerBatch('/run/w.sock', cmds, 42, { command: old.command }), {
    answers: [],
    stopped: '/run/w.sock: answered by pid 41, not the current worker (pid 42)',
  });
  // No socket (a config without it): the transport's reason, not the whole script.
  const none = fakeCli('worker', { fail: () => true });
  assert.deepEqual(await workerBatch('/run/w.sock', cmds, 42, { command: none.command }), { answers: [], stopped: '/run/w.sock: connect ENOENT' });
  // The second connection fails: the first chunk's answers are kept.
  const second = fakeCli('worker', { fail: (n) => n === 2 });
  const r = await workerBatch('/run/w.sock', cmds, 42, { command: second.command });
  assert.deepEqual(r.answers, cmds.slice(0, BATCH_CHUNK).map((c) => `done ${c}`));
  assert.equal(r.stopped, '/run/w.sock: connect ENOENT');
});
