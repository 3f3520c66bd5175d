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
export function createLogger(options: LogOptions): Logger {
  const base = { name: 'haproxy-pilot' };
  if (options.destination) return pino({ level: options.level, base }, options.destination);
  const out = processOutput(1);
  if (options.format === 'pretty') {
    // Loaded only when asked for: JSON lines (the default) need none of pino-pretty's modules.
    const { prettyFactory } = createRequire(import.meta.url)('pino-pretty') as { prettyFactory: (o: PrettyOptions) => (line: string) => string };
    const pretty = prettyFactory({ colorize: false });
    return pino({ level: options.level, base }, { write: (line: string) => void out.write(pretty(line)) });
  }
  return pino({ level: options.level, base }, { write: (line: string) => void out.write(line) });
}

/** A logger that drops everything: for unit tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
