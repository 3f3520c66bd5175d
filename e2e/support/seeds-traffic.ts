/** Traffic helpers for the seed tests: which servers answer through HAProxy, from inside the netns. */
import type { PilotProcess } from './pilot-process.js';

/**
 * `count` fresh-connection requests (the servers answer `Connection: close`) to `url` inside the
 * pilot's netns; returns each answer's body (trimmed) when 200, else `<code>` (`<000>` when no answer came).
 */
export async function sample(p: PilotProcess, url: string, count = 8, extra: string[] = []): Promise<string[]> {
  const args = ['curl', '-s', '--max-time', '5', ...extra];
  // Each answer is followed by a marker with its status code (bodies may span lines: HAProxy's 503
  // page). Not `@…`: curl reads a -w format starting with @ from a file.
  for (let i = 0; i < count; i++) args.push(...(i > 0 ? ['--next', '-s', '--max-time', '5', ...extra] : []), '-w', '~~%{http_code}~~\n', url);
  const r = await p.exec(args, { timeoutMs: 30_000 });
  const parts = r.stdout.split(/~~(\d{3})~~\n?/);
  const out: string[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) out.push(parts[i + 1] === '200' ? parts[i]!.trim() : `<${parts[i + 1]}>`);
  return out;
}

/** The distinct answers of a sample, sorted. */
export const distinct = (answers: string[]): string[] => [...new Set(answers)].sort();

export async function status(p: PilotProcess): Promise<Record<string, unknown>> {
  const r = await p.http('/status', 7778);
  return JSON.parse(r.body) as Record<string, unknown>;
}

export interface SourceStatusView {
  name: string;
  ok: boolean;
  stale: boolean;
  lastError?: string;
}

export async function sourceStatus(p: PilotProcess, name: string): Promise<SourceStatusView | undefined> {
  const s = await status(p);
  return (s.sources as SourceStatusView[] | undefined)?.find((x) => x.name === name);
}

export async function reloads(p: PilotProcess): Promise<number> {
  const s = await status(p);
  return Number((s.apply as { reloads?: number } | undefined)?.reloads ?? NaN);
}
