/**
 * The error that ends a command, written for whoever reads stderr: on a terminal (or with
 * PILOT_LOG_FORMAT=pretty) one readable line per problem (`haproxy-pilot: error: STATS_PORT: …`);
 * otherwise one JSON line per problem, in the log's own shape (pino's level 50, `code`, `msg`),
 * so a log collector reads them like every other line. Never a stack trace for an error
 * haproxy-pilot raised on purpose; an unexpected one (a bug) keeps its stack.
 */
import { describeError, isPilotError } from './errors.js';

export interface ReportTarget {
  write(chunk: string): unknown;
  isTTY?: boolean;
}

/** The problems an error stands for: E_CONFIG collects one line per variable or key. */
export function problemsOf(err: unknown): string[] {
  if (isPilotError(err)) {
    const listed = err.details?.['errors'];
    if (Array.isArray(listed) && listed.every((e) => typeof e === 'string') && listed.length > 0) return listed as string[];
    return err.message.split('\n').filter((l) => l.trim() !== '');
  }
  return [describeError(err)];
}

export function reportError(err: unknown, target: ReportTarget, options: { format?: 'json' | 'pretty'; now?: () => number } = {}): void {
  const problems = problemsOf(err);
  const code = isPilotError(err) ? err.code : 'E_INTERNAL';
  const readable = target.isTTY === true || options.format === 'pretty';
  if (readable) {
    for (const p of problems) target.write(`haproxy-pilot: error: ${p}\n`);
    if (!isPilotError(err) && err instanceof Error && err.stack) target.write(`${err.stack}\n`);
    return;
  }
  const time = (options.now ?? Date.now)();
  const details = isPilotError(err) && err.details ? withoutList(err.details) : undefined;
  for (const msg of problems) {
    const line: Record<string, unknown> = { level: 50, time, name: 'haproxy-pilot', code, ...(details ? { details } : {}), msg };
    if (!isPilotError(err) && err instanceof Error) line['stack'] = err.stack;
    target.write(`${JSON.stringify(line)}\n`);
  }
}

function withoutList(details: Record<string, unknown>): Record<string, unknown> | undefined {
  const { errors: _errors, ...rest } = details;
  return Object.keys(rest).length > 0 ? rest : undefined;
}
