/**
 * The real entry point (src/main.ts) with one addition: a timer that throws an error nothing
 * catches, PILOT_E2E_THROW_AFTER_MS after start — a genuine uncaught exception in the process,
 * as a bug would raise.
 */
const after = Number(process.env.PILOT_E2E_THROW_AFTER_MS ?? 2000);
setTimeout(() => {
  throw new Error('injected bug: uncaught exception');
}, after);
await import('../../src/main.js');
