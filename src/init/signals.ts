import { constants } from 'node:os';
import type { Logger } from '../log.js';

/** The part of `process` that signal listeners need; an EventEmitter in tests. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: () => void): unknown;
  off(event: NodeJS.Signals, listener: () => void): unknown;
}

/** What a signal sent to haproxy-pilot asks for. */
export type SignalIntent = 'graceful-stop' | 'fast-stop' | 'reload' | 'relay' | 'ignore';
/** The intents handed to the caller; 'ignore' is handled (logged) here. */
export type ActionIntent = Exclude<SignalIntent, 'ignore'>;
export type RunState = 'running' | 'graceful-stop' | 'fast-stop';

export interface SignalEntry {
  readonly signal: NodeJS.Signals;
  readonly intent: SignalIntent;
  readonly why: string;
  /**
   * Other names of the same signal number. They get a listener too (a no-op, so one delivery
   * is not handled twice): signal-exit subscribes by name and acts when it is the only listener.
   */
  readonly aliases?: readonly NodeJS.Signals[];
  /** Ignore without a log line (frequent and harmless). */
  readonly quiet?: boolean;
}

const SIGNAL_EXIT_WOULD_EXIT =
  'default action terminates; as PID 1 it would be dropped, but signal-exit (last-resort exit hook) re-raises it and ends us';

/**
 * PID 1 gets no default signal actions, and a Node process with signal-exit loaded dies on any
 * signal of signal-exit's list that has no other listener. So every signal that could end us
 * has an explicit entry here.
 */
export const SIGNAL_TABLE: readonly SignalEntry[] = Object.freeze([
  { signal: 'SIGTERM', intent: 'graceful-stop', why: 'docker stop / Kubernetes: stop cleanly' },
  {
    signal: 'SIGUSR1',
    intent: 'graceful-stop',
    why: "the official HAProxy image's STOPSIGNAL; without a listener Node would start its inspector instead",
  },
  { signal: 'SIGPWR', intent: 'graceful-stop', why: 'power-failure notice some inits and UPS daemons send: stop cleanly' },
  { signal: 'SIGINT', intent: 'fast-stop', why: 'Ctrl-C under docker run -it: SIGTERM to the master and programs' },
  { signal: 'SIGQUIT', intent: 'fast-stop', why: 'Ctrl-\\: fast stop (HAProxy itself ignores SIGQUIT, so it is not relayed)' },
  { signal: 'SIGHUP', intent: 'reload', why: 're-read config, re-render, validate, reload through the master' },
  { signal: 'SIGUSR2', intent: 'reload', why: "HAProxy's own reload signal: same as SIGHUP" },
  { signal: 'SIGTTOU', intent: 'relay', why: 'HAProxy: pause listeners; relayed to the master' },
  { signal: 'SIGTTIN', intent: 'relay', why: 'HAProxy: resume listeners; relayed to the master' },
  { signal: 'SIGWINCH', intent: 'ignore', why: 'terminal resize under docker run -t', quiet: true },
  { signal: 'SIGABRT', aliases: ['SIGIOT'], intent: 'ignore', why: SIGNAL_EXIT_WOULD_EXIT },
  { signal: 'SIGALRM', intent: 'ignore', why: `we arm no alarm; ${SIGNAL_EXIT_WOULD_EXIT}` },
  { signal: 'SIGVTALRM', intent: 'ignore', why: `we arm no virtual timer; ${SIGNAL_EXIT_WOULD_EXIT}` },
  { signal: 'SIGXCPU', intent: 'ignore', why: `CPU rlimit soft limit reached; ${SIGNAL_EXIT_WOULD_EXIT}` },
  {
    signal: 'SIGXFSZ',
    intent: 'ignore',
    why: `file size rlimit reached (with a handler the write fails with EFBIG instead); ${SIGNAL_EXIT_WOULD_EXIT}`,
  },
  { signal: 'SIGTRAP', intent: 'ignore', why: SIGNAL_EXIT_WOULD_EXIT },
  { signal: 'SIGSYS', intent: 'ignore', why: `bad system call (seccomp trap); ${SIGNAL_EXIT_WOULD_EXIT}` },
  { signal: 'SIGIO', aliases: ['SIGPOLL'], intent: 'ignore', why: `we request no async I/O signals; ${SIGNAL_EXIT_WOULD_EXIT}` },
  { signal: 'SIGSTKFLT', intent: 'ignore', why: SIGNAL_EXIT_WOULD_EXIT },
] satisfies SignalEntry[]);

/**
 * What to do with a signal's intent given the stop already under way. A second stop signal
 * during a graceful stop escalates to a fast stop (the impatient `docker stop` / double Ctrl-C);
 * once stopping, reloads are pointless and dropped; relays still go through.
 */
export function nextIntent(current: RunState, intent: SignalIntent): SignalIntent {
  if (current === 'running' || intent === 'relay' || intent === 'ignore') return intent;
  if (intent === 'reload') return 'ignore';
  // A stop signal while stopping.
  return current === 'graceful-stop' ? 'fast-stop' : 'ignore';
}

/**
 * Installs a listener for every signal of SIGNAL_TABLE that exists on this platform. Every
 * intent but 'ignore' goes to onIntent; ignored signals are logged (when a logger is given)
 * unless the entry is quiet. Returns the function that removes them all again.
 */
export function installSignalHandlers(
  onIntent: (intent: ActionIntent, signal: NodeJS.Signals) => void,
  proc: SignalSource = process,
  log?: Logger,
): () => void {
  const known = constants.signals as Record<string, number | undefined>;
  const installed: Array<[NodeJS.Signals, () => void]> = [];
  const noop = (): void => {};

  for (const entry of SIGNAL_TABLE) {
    if (known[entry.signal] === undefined) continue;
    const listener = (): void => {
      if (entry.intent !== 'ignore') onIntent(entry.intent, entry.signal);
      else if (!entry.quiet) log?.info({ signal: entry.signal, why: entry.why }, 'signal ignored');
    };
    proc.on(entry.signal, listener);
    installed.push([entry.signal, listener]);
    for (const alias of entry.aliases ?? []) {
      if (known[alias] === undefined) continue;
      proc.on(alias, noop);
      installed.push([alias, noop]);
    }
  }

  return () => {
    for (const [signal, listener] of installed) proc.off(signal, listener);
    installed.length = 0;
  };
}
