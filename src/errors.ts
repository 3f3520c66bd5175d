/**
 * Every error haproxy-pilot raises on purpose carries a stable code (for logs, /status and exit
 * codes) and, where there is one, the underlying cause.
 */
export type ErrorCode =
  | 'E_CONFIG' // invalid env var, yaml key or value: names the variable/path and the value
  | 'E_TEMPLATE' // template missing, unparsable or failing at render time
  | 'E_VALUE' // a value (from env or discovery) that would be unsafe in haproxy.cfg
  | 'E_CHECK' // haproxy -c rejected a candidate config
  | 'E_PORT_BUSY' // a port the candidate binds is held by another process
  | 'E_RELOAD' // the master did not confirm a reload
  | 'E_HAPROXY' // the HAProxy master could not start or died
  | 'E_MASTER_CLI' // master CLI / runtime API failure
  | 'E_SOURCE' // a discovery source failed (unreachable, 4xx/5xx, garbage)
  | 'E_PROGRAM' // a helper program could not be started
  | 'E_INTERNAL';

export interface PilotErrorOptions {
  cause?: unknown;
  /** Extra structured context for logs and /status (never secrets). */
  details?: Record<string, unknown>;
}

export class PilotError extends Error {
  readonly code: ErrorCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options: PilotErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PilotError';
    this.code = code;
    this.details = options.details;
  }
}

export function isPilotError(err: unknown, code?: ErrorCode): err is PilotError {
  return err instanceof PilotError && (code === undefined || err.code === code);
}

/** A short, loggable description of any thrown value. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
