/**
 * Standalone entry for the Consul KV protocol fixture (support/sources-consul-kv-fixture.ts), so
 * it can run inside a test's network namespace (`ip netns exec … node seeds-kv-fixture-main.js`)
 * where haproxy-pilot can reach it on 127.0.0.1. Neither Consul nor Container Cloud's key/value
 * endpoint can be installed on this machine; the fixture follows Consul's documented KV API.
 *
 * Protocol: argv[2] is the bearer token ('' for none). It prints one JSON line
 * `{"url": "http://127.0.0.1:<port>"}` once listening, then reads JSON commands on stdin, one a
 * line, and answers each on stdout with `{"id", "ok", …}`:
 *   {"id":1,"op":"put","key":"apps/x/containers/one","value":"127.0.0.1:8001"}
 *   {"id":2,"op":"delete","key":"…"}
 *   {"id":3,"op":"requests"}   → {"requests":[{path, query, authorization}]} (what pilot sent)
 *   {"id":4,"op":"fault","fault":"500"}
 * A batch (`"op":"batch","ops":[…]`) applies several puts/deletes in one go (one tick).
 */
import { startConsulKvFixture, type KvFault } from './sources-consul-kv-fixture.js';
import { serveCommands } from './json-lines-main.js';

interface Command {
  id?: number;
  op: 'put' | 'delete' | 'requests' | 'fault' | 'batch';
  key?: string;
  value?: string;
  fault?: KvFault;
  ops?: Command[];
}

const token = process.argv[2] ?? '';
const fixture = await startConsulKvFixture(token === '' ? {} : { token });
process.stdout.write(`${JSON.stringify({ url: fixture.url })}\n`);

function apply(cmd: Command): Record<string, unknown> {
  switch (cmd.op) {
    case 'put':
      fixture.put(cmd.key!, cmd.value!);
      return {};
    case 'delete':
      fixture.delete(cmd.key!);
      return {};
    case 'requests':
      return { requests: fixture.requests };
    case 'fault':
      fixture.fault = cmd.fault ?? 'none';
      return {};
    case 'batch':
      for (const c of cmd.ops ?? []) apply(c);
      return {};
    default:
      throw new Error(`unknown op ${String((cmd as { op: unknown }).op)}`);
  }
}

serveCommands<Command>(apply, () => fixture.close());
