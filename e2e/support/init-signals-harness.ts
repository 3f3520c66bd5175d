/**
 * A process with signal-exit loaded (as the product uses it for last-resort cleanup) and, unless
 * started with `bare`, the signal table installed. Prints JSON lines on stdout: {ready}, one
 * {intent, signal} per intent, the logger's lines, and {exit} from signal-exit's hook.
 * A fast-stop intent ends it with code 0. Used by e2e/reaper.test.ts.
 */
import { onExit } from 'signal-exit';
import { createLogger } from '../../src/log.js';
import { installSignalHandlers } from '../../src/init/signals.js';

const print = (o: Record<string, unknown>): void => void process.stdout.write(`${JSON.stringify(o)}\n`);
const bare = process.argv[2] === 'bare';

onExit((code, signal) => print({ exit: true, code, signal }));
if (!bare) {
  const log = createLogger({ level: 'info', format: 'json' });
  installSignalHandlers(
    (intent, signal) => {
      print({ intent, signal });
      if (intent === 'fast-stop') process.exit(0);
    },
    process,
    log,
  );
}
setInterval(() => {}, 60_000);
print({ ready: true, pid: process.pid });
