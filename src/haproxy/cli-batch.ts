/**
 * Many runtime API commands on few connections, through the master CLI or the worker's own stats
 * socket, with their answers in order.
 *
 * Both CLIs have an interactive mode (`prompt`): each command is answered, then the prompt is
 * printed, so one connection carries many commands and the answers are told apart by the prompt.
 * Measured on 2.6.12 (`prompt\n<a>\n<b>\nquit\n`):
 *   master CLI, `@1 a`:  `master> <a's answer>\nmaster> <b's answer>\nmaster> `
 *   worker stats socket: `\n> <a's answer>\n> <b's answer>\n> `
 * every answer ending with the blank line the CLI puts after it (an empty answer is just `\n`).
 * Answers are returned without their trailing line breaks.
 *
 * Why the worker's socket when there is one: the master opens a stream to the worker for every
 * `@1` line, 0.1–0.3 ms each; the worker answers its own socket in 0.01–0.04 ms. 3,000 `set
 * server` commands measured on 2.6.12: 420–460 ms through the master, 40–50 ms on the worker.
 */
import { PilotError } from '../errors.js';
import { DEFAULT_MASTER_CLI_TIMEOUT_MS, masterCommand, type MasterCommandFn, type MasterCommandOptions } from './master-cli.js';

/** Commands per connection in a batch. */
export const BATCH_CHUNK = 200;

export type BatchOptions = MasterCommandOptions & { command?: MasterCommandFn };

/** How one CLI frames a batch. */
interface Dialect {
  /** What precedes each answer (split on it). */
  prompt: string;
  /** Put before each command (`@1 ` routes it to the current worker). */
  prefix: string;
  /** A command sent first on each connection, and what its answer must show (else an error). */
  lead?: { command: string; check(answer: string): string | undefined };
  /** An error message for an answer that means the batch cannot go on, if it is one. */
  fatal?(answer: string): string | undefined;
}

/** The answers a batch got, in order; `stopped` says why there are fewer than commands. */
export interface BatchResult {
  answers: string[];
  stopped?: string;
}

/**
 * Send `commands` in chunks of BATCH_CHUNK, one connection each.
 *
 * Measured on 2.6.12: the master sometimes closes a connection carrying thousands of commands
 * before it answered them all (4 of 20 batches of 3,000; none of 240 batches of up to 2,000 in the
 * same run). So the commands a connection closed before answering are sent again on a new one (a
 * command whose answer was lost may run twice: `set server` is idempotent, a repeated `add server`
 * is refused, which the caller treats as a failure and reloads). It stops at a connection that
 * fails, a lead answer that is wrong, a fatal answer, or two connections in a row that answer
 * nothing.
 */
async function promptBatch(socketPath: string, commands: readonly string[], dialect: Dialect, options: BatchOptions): Promise<BatchResult> {
  for (const c of commands) {
    if (/[\r\n]/.test(c)) throw new PilotError('E_MASTER_CLI', `${socketPath}: command contains a line break: ${JSON.stringify(c)}`);
  }
  const send = options.command ?? masterCommand;
  const answers: string[] = [];
  let closedEarly = 0;
  while (answers.length < commands.length) {
    const chunk = commands.slice(answers.length, answers.length + BATCH_CHUNK);
    const lines = [...(dialect.lead ? [dialect.lead.command] : []), ...chunk].map((c) => `${dialect.prefix}${c}`);
    // The whole script goes out as one write followed by a half-close, like one command does.
    const timeoutMs = options.timeoutMs ?? Math.max(DEFAULT_MASTER_CLI_TIMEOUT_MS, chunk.length * 5);
    let text: string;
    try {
      text = await send(socketPath, ['prompt', ...lines, 'quit'].join('\n'), { timeoutMs, allowNewlines: true });
    } catch (err) {
      // The transport's message quotes the whole script: keep its reason.
      const cause = (err as Error).cause;
      return { answers, stopped: `${socketPath}: ${cause instanceof Error ? cause.message : (err as Error).message}` };
    }
    const parts = text.split(dialect.prompt);
    // parts[0]: before the first prompt; then one part per line; the last one follows `quit`.
    const got = parts.slice(1, 1 + lines.length).map((p) => p.replace(/\n+$/, ''));
    // Without the prompt that follows it, the last answer may be cut: ask for that command again.
    if (got.length < lines.length && got.length === parts.length - 1) got.pop();
    if (dialect.lead && got.length > 0) {
      const wrong = dialect.lead.check(got.shift()!);
      if (wrong) return { answers, stopped: `${socketPath}: ${wrong}` };
    }
    for (const [i, a] of got.entries()) {
      const fatal = dialect.fatal?.(a);
      if (fatal) return { answers, stopped: `${socketPath}: "${dialect.prefix}${chunk[i]}": ${fatal}` };
    }
    answers.push(...got);
    if (got.length < chunk.length) {
      // Twice in a row without a single answer: the CLI is not answering at all.
      closedEarly = got.length === 0 ? closedEarly + 1 : 0;
      if (closedEarly >= 2) return { answers, stopped: `${socketPath}: ${answers.length} answers for ${commands.length} commands (the connection closed early)` };
    } else closedEarly = 0;
  }
  return { answers };
}

/** Runtime API commands for the current worker through the master CLI (`@1 <cmd>`), in order. */
export async function runtimeBatch(socketPath: string, commands: readonly string[], options: BatchOptions = {}): Promise<string[]> {
  const { answers, stopped } = await promptBatch(socketPath, commands, {
    prompt: 'master> ',
    prefix: '@1 ',
    // The master answers this instead of forwarding when no worker runs (e.g. mid-restart).
    fatal: (a) => (/^Can't find the target PID/m.test(a) ? a.trim() : undefined),
  }, options);
  if (stopped) throw new PilotError('E_MASTER_CLI', `master CLI ${stopped}`, { details: { socketPath, answered: answers.length } });
  return answers;
}

/**
 * Runtime API commands on the worker's own stats socket, in order; answers for a prefix of them.
 *
 * Each connection first asks `show info` and goes on only when the worker answering is `pid`: after
 * a reload the old worker may still hold the socket (HAProxy hands listening sockets over to the
 * new worker, and the old one closes them only at its soft-stop), and what it is told is lost with
 * it. Where it stopped (no socket, another process answering, the socket no longer answering), the
 * caller sends the rest through the master.
 */
export function workerBatch(socketPath: string, commands: readonly string[], pid: number, options: BatchOptions = {}): Promise<BatchResult> {
  return promptBatch(socketPath, commands, {
    prompt: '\n> ',
    prefix: '',
    lead: {
      command: 'show info',
      check: (a) => {
        const answered = /^Pid: (\d+)$/m.exec(a)?.[1];
        return answered === String(pid) ? undefined : `answered by ${answered ? `pid ${answered}` : 'no worker'}, not the current worker (pid ${pid})`;
      },
    },
  }, options);
}
