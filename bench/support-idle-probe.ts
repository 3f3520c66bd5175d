/**
 * Preloaded into a process (`node --import <this> …`) by bench/idle.ts: after IDLE_PROBE_AFTER_MS
 * it writes to IDLE_PROBE_OUT what the process holds: memory by kind, V8's heap spaces, every
 * script V8 has loaded (the inspector reports them all when the debugger is enabled) and a heap
 * snapshot (next to it), then detaches. Only for the "what does it hold" run: the debugger is enabled once, at the end.
 */
import { Session } from 'node:inspector';
import { writeFileSync } from 'node:fs';
import { getHeapSpaceStatistics, getHeapStatistics, writeHeapSnapshot } from 'node:v8';

const after = Number(process.env.IDLE_PROBE_AFTER_MS ?? 20_000);
const out = process.env.IDLE_PROBE_OUT;

function probe(): void {
  if (!out) return;
  const scripts: string[] = [];
  const session = new Session();
  session.connect();
  session.on('Debugger.scriptParsed', (m) => {
    const url = (m.params as { url?: string }).url;
    if (url) scripts.push(url);
  });
  // Enabling the debugger reports every script already compiled, synchronously.
  session.post('Debugger.enable', () => {
    session.post('Debugger.disable', () => session.disconnect());
    // The heap as it was before the debugger's own bookkeeping grows: a snapshot next to the report.
    const snapshot = writeHeapSnapshot(`${out}.heapsnapshot`);
    writeFileSync(
      out,
      JSON.stringify({
        memory: process.memoryUsage(),
        heap: getHeapStatistics(),
        spaces: getHeapSpaceStatistics().map((s) => ({ name: s.space_name, used: s.space_used_size, size: s.space_size })),
        scripts: [...new Set(scripts)],
        // Node's own built-in modules loaded so far (process.moduleLoadList: "NativeModule fs", "Internal Binding …").
        builtins: (process as unknown as { moduleLoadList?: string[] }).moduleLoadList ?? [],
        snapshot,
      }),
    );
  });
}

setTimeout(probe, after).unref();
