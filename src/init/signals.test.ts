import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import { constants } from 'node:os';
import { signals as signalExitSignals } from 'signal-exit/signals';
import { createLogger } from '../log.js';
import { SIGNAL_TABLE, installSignalHandlers, nextIntent, type ActionIntent, type RunState, type SignalIntent } from './signals.js';

const exists = (s: string) => (constants.signals as Record<string, number | undefined>)[s] !== undefined;

test('the table maps the signals of DESIGN.md to their intents', () => {
  const intentOf = new Map(SIGNAL_TABLE.map((e) => [e.signal, e.intent]));
  const expected: Array<[NodeJS.Signals, SignalIntent]> = [
    ['SIGTERM', 'graceful-stop'],
    ['SIGUSR1', 'graceful-stop'],
    ['SIGINT', 'fast-stop'],
    ['SIGQUIT', 'fast-stop'],
    ['SIGHUP', 'reload'],
    ['SIGUSR2', 'reload'],
    ['SIGTTIN', 'relay'],
    ['SIGTTOU', 'relay'],
    ['SIGWINCH', 'ignore'],
    ['SIGPWR', 'graceful-stop'],
  ];
  for (const [signal, intent] of expected) assert.equal(intentOf.get(signal), intent, signal);
  const names = SIGNAL_TABLE.flatMap((e) => [e.signal, ...(e.aliases ?? [])]);
  assert.equal(new Set(names).size, names.length, 'no signal listed twice');
});

test('every signal signal-exit would act on gets a listener, and uninstall removes them all', () => {
  const proc = new EventEmitter();
  const uninstall = installSignalHandlers(() => {}, proc);
  for (const signal of signalExitSignals.filter(exists)) {
    assert.ok(proc.listenerCount(signal) >= 1, `${signal} has a listener`);
  }
  assert.equal(proc.listenerCount('SIGUSR1'), 1);
  uninstall();
  assert.deepEqual(proc.eventNames(), []);
});

test('intents reach the callback; ignored signals are logged unless quiet', () => {
  const proc = new EventEmitter();
  const seen: Array<[ActionIntent, string]> = [];
  const lines: Array<Record<string, unknown>> = [];
  const destination = { write: (s: string) => void lines.push(JSON.parse(s)) } as unknown as NodeJS.WritableStream;
  const log = createLogger({ level: 'info', format: 'json', destination });
  const uninstall = installSignalHandlers((intent, signal) => seen.push([intent, signal]), proc, log);
  for (const s of ['SIGTERM', 'SIGUSR1', 'SIGINT', 'SIGHUP', 'SIGTTOU', 'SIGWINCH', 'SIGALRM', 'SIGIOT']) proc.emit(s);
  uninstall();
  assert.deepEqual(seen, [
    ['graceful-stop', 'SIGTERM'],
    ['graceful-stop', 'SIGUSR1'],
    ['fast-stop', 'SIGINT'],
    ['reload', 'SIGHUP'],
    ['relay', 'SIGTTOU'],
  ]);
  // SIGWINCH is quiet; SIGIOT is only an alias listener (the SIGABRT one handles the delivery).
  assert.deepEqual(
    lines.map((l) => [l.msg, l.signal]),
    [['signal ignored', 'SIGALRM']],
  );
});

test('nextIntent: a second stop signal escalates a graceful stop; stopping drops reloads', () => {
  const cases: Array<[RunState, SignalIntent, SignalIntent]> = [
    ['running', 'graceful-stop', 'graceful-stop'],
    ['running', 'fast-stop', 'fast-stop'],
    ['running', 'reload', 'reload'],
    ['running', 'relay', 'relay'],
    ['running', 'ignore', 'ignore'],
    ['graceful-stop', 'graceful-stop', 'fast-stop'],
    ['graceful-stop', 'fast-stop', 'fast-stop'],
    ['graceful-stop', 'reload', 'ignore'],
    ['graceful-stop', 'relay', 'relay'],
    ['fast-stop', 'graceful-stop', 'ignore'],
    ['fast-stop', 'fast-stop', 'ignore'],
    ['fast-stop', 'reload', 'ignore'],
    ['fast-stop', 'relay', 'relay'],
  ];
  for (const [state, intent, expected] of cases) assert.equal(nextIntent(state, intent), expected, `${state} + ${intent}`);
});
