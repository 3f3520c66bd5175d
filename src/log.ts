import { pino, type Logger, type LevelWithSilent } from 'pino';
import { prettyFactory } from 'pino-pretty';

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
 * Writes are synchronous so that lines logged just before an exit are not lost (PID 1 exits
 * with process.exit, which does not wait for asynchronous streams).
 */
export function createLogger(options: LogOptions): Logger {
  const base = { name: 'haproxy-pilot' };
  if (options.destination) {
    const dest = options.destination;
    if (options.format !== 'pretty') return pino({ level: options.level, base }, dest);
    // Formatted in-process and written at once (render, check and plan log to stderr).
    const pretty = prettyFactory({ colorize: false });
    return pino({ level: options.level, base }, { write: (line: string) => void dest.write(pretty(line)) });
  }
  if (options.format === 'pretty') {
    return pino({
      level: options.level,
      base,
      transport: { target: 'pino-pretty', options: { destination: 1, sync: true, colorize: false } },
    });
  }
  return pino({ level: options.level, base }, pino.destination({ dest: 1, sync: true }));
}

/** A logger that drops everything: for unit tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
