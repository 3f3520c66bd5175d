#!/usr/bin/env node
/**
 * Composition root: the only place that touches `process`. Everything else gets what it needs
 * injected and returns an exit code.
 */
import { runCli } from './cli.js';
import { ExitCode } from './init/exit-code.js';
import { flushProcessOutput } from './output.js';

let fatal: ((err: unknown) => void) | undefined;
// PID 1 must not die by accident: an error nothing caught leads to an orderly stop (HAProxy and
// programs stopped) with exit code 70, not to a crash that orphans HAProxy.
const onUnexpected = (err: unknown) => {
  if (fatal) fatal(err);
  else {
    process.stderr.write(`haproxy-pilot: unexpected error: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(ExitCode.INTERNAL);
  }
};
process.on('uncaughtException', onUnexpected);
process.on('unhandledRejection', onUnexpected);

const code = await runCli(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  stdinTTY: process.stdin.isTTY === true,
  onFatal: (handler) => (fatal = handler),
});
// Log lines are written asynchronously: write what is queued, unless the reader is gone.
await flushProcessOutput(2000);
process.exit(code);
