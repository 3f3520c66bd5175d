import { pino, type Logger, type LevelWithSilent } from 'pino';
import { createRequire } from 'node:module';
import type { PrettyOptions } from 'pino-pretty';
import { processOutput } from './output.js';

export type { Logger };
export type LogFormat = 'json' | 'pretty';

export interface LogOptions {
  level: LevelWithSilent;
  format: LogFormat;
  /** Defaults to stdout (fd 1). Tests pass a stream to capture lines. */
  destination?: NodeJS.WritableStream;
}

/**
 * The root logger: pino JSON lines on stdout (the container's log), or pino-pretty for humans.
 * Components take `log.child({ component: 'name' })`; nothing else creates loggers.
 * Writes are asynchronous and bounded (src/output.ts): a stalled log reader drops and counts
 * lines instead of blocking the control plane. main.ts flushes what is queued before it exits.
 */
/** pino-pretty's formatter, loaded only when asked for: JSON lines (the default) need none of its modules. */
function prettyLines(): (line: string) => string {
  const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as { prettyFactory: (o: PrettyOptions) => (line: string) => string };
  return prettyFactory({ colorize: false });
}

export function createLogger(options: LogOptions): Logger {
  const base = { name: 'haproxy-pilot' };
  if (options.destination) {
    const dest = options.destination;
    if (options.format !== 'pretty') return pino({ level: options.level, base }, dest);
    // Formatted in-process and written at once (render, check and plan log to stderr).
    const pretty = prettyLines();
    return pino({ level: options.level, base }, { write: (line: string) => void dest.write(pretty(line)) });
  }
  const out = processOutput(1);
  if (options.format === 'pretty') {
    const pretty = prettyLines();
    return pino({ level: options.level, base }, { write: (line: string) => void out.write(pretty(line)) });
  }
  return pino({ level: options.level, base }, { write: (line: string) => void out.write(line) });
}

/** A logger that drops everything: for unit tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
