/**
 * The command loop of the helper processes the seed tests run inside a network namespace: one
 * JSON command per stdin line, one JSON answer per stdout line (`{id, ok, …}`), and an exit when
 * stdin closes (the test process died). See seeds-netns.ts for the other end.
 */
import { createInterface } from 'node:readline';

export function serveCommands<C extends { id?: unknown }>(handle: (cmd: C) => object | Promise<object>, onClose: () => Promise<unknown> | void = () => {}): void {
  const answer = (value: object): void => void process.stdout.write(`${JSON.stringify(value)}\n`);
  const rl = createInterface({ input: process.stdin });
  rl.on('line', (line) => {
    if (line.trim() === '') return;
    let cmd: C;
    try {
      cmd = JSON.parse(line) as C;
    } catch {
      return answer({ ok: false, error: 'not JSON' });
    }
    Promise.resolve()
      .then(() => handle(cmd))
      .then(
        (result) => answer({ id: cmd.id, ok: true, ...result }),
        (err: unknown) => answer({ id: cmd.id, ok: false, error: String(err) }),
      );
  });
  // The test ends us by pid; stdin closing (the test process died) ends us too.
  rl.on('close', () => void Promise.resolve(onClose()).finally(() => process.exit(0)));
}
