import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, createServer, type Socket } from 'node:net';
import { silentLogger } from '../log.js';
import { isPilotError } from '../errors.js';
import { startControlServer, type ControlServerOptions } from './server.js';
import { healthcheck, healthUrl } from './healthcheck.js';
import { formatMetrics } from './metrics.js';

async function start(t: { after(fn: () => Promise<void>): void }, overrides: Partial<ControlServerOptions> = {}) {
  const state = { reasons: [] as string[], reloads: 0 };
  const server = await startControlServer({
    host: '127.0.0.1',
    port: 0,
    log: silentLogger(),
    status: () => ({ configHash: 'abc', reloads: state.reloads }),
    health: () => state.reasons,
    reload: async () => {
      state.reloads++;
      return { ok: true, kind: 'reload' };
    },
    metrics: () => ({ apply: { reloads: state.reloads, runtimeOps: 3, applyFailures: 1, configHash: 'abc', lastApply: { ok: true } }, sources: [{ name: 'kv', ok: false, stale: true, errors: 4 }], version: '0.1.0' }),
    ...overrides,
  });
  t.after(() => server.close());
  const base = `http://127.0.0.1:${server.address.port}`;
  return { server, state, base };
}

test('GET /health and /ready: 200 when healthy, 503 with the reasons when not', async (t) => {
  const { base, state, server } = await start(t);
  let res = await fetch(`${base}/health`);
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  assert.equal(await healthcheck(server.address), 0);

  state.reasons = ['the last apply failed: haproxy -c rejected x.cfg'];
  res = await fetch(`${base}/health`);
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { ok: false, reasons: state.reasons });
  res = await fetch(`${base}/ready`);
  assert.equal(res.status, 503);
  assert.equal(await healthcheck(`127.0.0.1:${server.address.port}`), 1);
});

test('health accepts a {ok, reasons} report too', async (t) => {
  const { base } = await start(t, { health: async () => ({ ok: false, reasons: ['no HAProxy worker is running'] }) });
  const res = await fetch(`${base}/health`);
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { ok: false, reasons: ['no HAProxy worker is running'] });
});

test('GET /status answers the injected status as JSON', async (t) => {
  const { base } = await start(t);
  const res = await fetch(`${base}/status?x=1`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /application\/json/);
  assert.deepEqual(await res.json(), { configHash: 'abc', reloads: 0 });
});

test('POST /reload calls reload and answers its result; a failed reload is a 500', async (t) => {
  let result: { ok: boolean; error?: { code: string } } = { ok: true };
  let calls = 0;
  const { base } = await start(t, {
    reload: async () => {
      calls++;
      return result;
    },
  });
  let res = await fetch(`${base}/reload`, { method: 'POST', body: 'ignored' });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { ok: true });
  result = { ok: false, error: { code: 'E_CHECK' } };
  res = await fetch(`${base}/reload`, { method: 'POST' });
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), result);
  assert.equal(calls, 2);
});

test('GET /metrics: Prometheus text from a snapshot', async (t) => {
  const { base } = await start(t);
  const res = await fetch(`${base}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
  const body = await res.text();
  assert.match(body, /^haproxy_pilot_reloads_total 0$/m);
  assert.match(body, /^haproxy_pilot_runtime_ops_total 3$/m);
  assert.match(body, /^haproxy_pilot_apply_failures_total 1$/m);
  assert.match(body, /^haproxy_pilot_source_errors_total\{source="kv"\} 4$/m);
  assert.match(body, /^haproxy_pilot_last_apply_success 1$/m);
  assert.match(body, /^haproxy_pilot_build_info\{version="0\.1\.0"\} 1$/m);
});

test('GET /metrics counts the log lines dropped because stdout was not read', async (t) => {
  const { base } = await start(t, { logDropped: () => 7 });
  assert.match(await (await fetch(`${base}/metrics`)).text(), /^haproxy_pilot_log_dropped_total 7$/m);
});

test('metrics: a string is served as is', async (t) => {
  const { base } = await start(t, { metrics: () => 'x_total 1\n' });
  assert.equal(await (await fetch(`${base}/metrics`)).text(), 'x_total 1\n');
});

test('unknown paths are 404, wrong methods 405 with Allow, HEAD works', async (t) => {
  const { base } = await start(t);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
  const r1 = await fetch(`${base}/reload`);
  assert.equal(r1.status, 405);
  assert.equal(r1.headers.get('allow'), 'POST');
  const r2 = await fetch(`${base}/health`, { method: 'DELETE' });
  assert.equal(r2.status, 405);
  assert.equal(r2.headers.get('allow'), 'GET');
  const r3 = await fetch(`${base}/health`, { method: 'HEAD' });
  assert.equal(r3.status, 200);
  assert.equal(await r3.text(), '');
});

test('a handler that throws answers 500 and the server keeps serving', async (t) => {
  const { base } = await start(t, {
    status: () => {
      throw new Error('boom');
    },
  });
  const res = await fetch(`${base}/status`);
  assert.equal(res.status, 500);
  assert.deepEqual(await res.json(), { ok: false, error: 'boom' });
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('close() returns even with a keep-alive connection open', async () => {
  const server = await startControlServer({ host: '127.0.0.1', port: 0, log: silentLogger(), status: () => ({}), health: () => [], reload: () => ({ ok: true }), metrics: () => '' });
  const res = await fetch(`http://127.0.0.1:${server.address.port}/health`);
  await res.text();
  await server.close();
  assert.equal(await healthcheck(server.address, { timeoutMs: 1000 }), 1, 'nothing answers after close');
});

test('a busy control address is an E_CONFIG naming it', async (t) => {
  const held = createServer();
  await new Promise<void>((r) => held.listen({ host: '127.0.0.1', port: 0 }, () => r()));
  t.after(() => new Promise<void>((r) => held.close(() => r())));
  const port = (held.address() as { port: number }).port;
  await assert.rejects(
    startControlServer({ host: '127.0.0.1', port, log: silentLogger(), status: () => ({}), health: () => [], reload: () => ({}), metrics: () => '' }),
    (err: unknown) => isPilotError(err, 'E_CONFIG') && err.message.includes(`127.0.0.1:${port}`) && /EADDRINUSE/.test(err.message),
  );
});

test('healthUrl: wildcard binds are probed on loopback, IPv6 is bracketed', () => {
  assert.equal(healthUrl({ host: '0.0.0.0', port: 7778 }), 'http://127.0.0.1:7778/health');
  assert.equal(healthUrl('[::]:7778'), 'http://[::1]:7778/health');
  assert.equal(healthUrl('[fd00::1]:80'), 'http://[fd00::1]:80/health');
  assert.equal(healthUrl(':7778'), 'http://127.0.0.1:7778/health');
  assert.throws(() => healthUrl('nonsense'));
});

test('formatMetrics: escapes label values; a failed last apply is 0; no sources → no samples', async () => {
  const text = await formatMetrics({ apply: { reloads: 2, runtimeOps: 0, applyFailures: 1, lastApply: { ok: false } }, sources: [{ name: 'a"b\\c', ok: true, stale: false }] });
  assert.match(text, /^haproxy_pilot_last_apply_success 0$/m);
  assert.match(text, /^haproxy_pilot_source_up\{source="a\\"b\\\\c"\} 1$/m);
  assert.match(text, /^haproxy_pilot_source_errors_total\{source="a\\"b\\\\c"\} 0$/m);
  const empty = await formatMetrics({});
  assert.doesNotMatch(empty, /^haproxy_pilot_source_up\{/m);
  assert.match(empty, /^# TYPE haproxy_pilot_reloads_total counter$/m);
});

/** One raw HTTP exchange: what the server answered (its status line onwards) before it closed or the timeout. */
function raw(port: number, payload: string | Buffer[], { timeoutMs = 3000, gapMs = 0 } = {}): Promise<{ text: string; closed: boolean }> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    let text = '';
    let closed = false;
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closed });
    }, timeoutMs);
    socket.on('data', (d) => (text += d.toString('latin1')));
    socket.on('error', () => {});
    socket.on('close', () => {
      closed = true;
      clearTimeout(timer);
      resolve({ text, closed });
    });
    socket.on('connect', async () => {
      if (typeof payload === 'string') socket.write(payload);
      else
        for (const part of payload) {
          if (socket.destroyed) break;
          socket.write(part);
          if (gapMs) await new Promise((r) => setTimeout(r, gapMs));
        }
    });
  });
}

test('a request target that is not a URL answers 400 and the server keeps serving', async (t) => {
  const { base, server } = await start(t);
  for (const target of ['http://[::1/', 'http://', '//[/x', 'http://a b/']) {
    const { text } = await raw(server.address.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    assert.match(text, /^HTTP\/1\.1 400 /, `${target}: ${text}`);
  }
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('limits: oversized headers 431, oversized body 413, a slow request is cut off', async (t) => {
  const { base, server } = await start(t, { limits: { headersTimeoutMs: 500, maxBodyBytes: 1024 } });
  const port = server.address.port;
  const big = await raw(port, `GET /health HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
  assert.match(big.text, /^HTTP\/1\.1 431 /);

  const declared = await raw(port, `POST /reload HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n`);
  assert.match(declared.text, /^HTTP\/1\.1 413 /);
  const chunked = await raw(port, `POST /reload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n800\r\n${'b'.repeat(0x800)}\r\n0\r\n\r\n`);
  assert.match(chunked.text, /^HTTP\/1\.1 413 /);

  // Slowloris: one header byte every 100 ms never finishes the headers; the server closes.
  const drip = [...`GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ${'s'.repeat(100)}`].map((c) => Buffer.from(c));
  const slow = await raw(port, drip, { gapMs: 100, timeoutMs: 8000 });
  assert.ok(slow.closed, 'the server closed the slow connection');
  assert.doesNotMatch(slow.text, /^HTTP\/1\.1 200 /);
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('concurrent connections are capped; the server still answers once they go', async (t) => {
  const { base, server } = await start(t, { limits: { maxConnections: 4 } });
  const idle = await Promise.all(
    Array.from({ length: 4 }, () => new Promise<Socket>((resolve) => { const s = connect({ host: '127.0.0.1', port: server.address.port }, () => resolve(s)); s.on('error', () => {}); })),
  );
  await new Promise((r) => setTimeout(r, 100));
  const refused = await raw(server.address.port, 'GET /health HTTP/1.1\r\nHost: x\r\n\r\n', { timeoutMs: 2000 });
  assert.ok(refused.closed && refused.text === '', 'a fifth connection is closed unanswered');
  for (const s of idle) s.destroy();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('POST /reload: requests that arrive together share one reload; reloads are spaced', async (t) => {
  let calls = 0;
  let release!: () => void;
  const { base } = await start(t, {
    limits: { reloadMinIntervalMs: 400 },
    reload: async () => {
      calls++;
      await new Promise<void>((r) => (release = r));
      return { ok: true, pass: calls };
    },
  });
  const first = fetch(`${base}/reload`, { method: 'POST' });
  await new Promise((r) => setTimeout(r, 100));
  release();
  assert.deepEqual(await (await first).json(), { ok: true, pass: 1 });
  // Within the spacing: ten requests wait together and share the next reload.
  const t0 = Date.now();
  const together = Array.from({ length: 10 }, () => fetch(`${base}/reload`, { method: 'POST' }));
  await new Promise((r) => setTimeout(r, 600));
  release();
  const answers = await Promise.all(together.map(async (r) => (await r).json()));
  assert.deepEqual(answers, Array.from({ length: 10 }, () => ({ ok: true, pass: 2 })));
  assert.equal(calls, 2);
  assert.ok(Date.now() - t0 >= 300, 'the second reload waited for the spacing');
});

test('a handler error after the answer started, or a throwing status, never stops the server', async (t) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  const { base } = await start(t, { status: () => circular, metrics: () => Promise.reject(new Error('metrics down')) });
  assert.equal((await fetch(`${base}/status`)).status, 500);
  assert.equal((await fetch(`${base}/metrics`)).status, 500);
  assert.equal((await fetch(`${base}/health`)).status, 200);
});

test('/ready is not /health: it answers its own reasons', async (t) => {
  let ready: string[] = ['source kv has not answered yet'];
  const { base, state } = await start(t, { ready: () => ready });
  state.reasons = ['program bad (env PROGRAM_BAD) failed to start 5 times in a row: spawn /nonexistent ENOENT'];
  let res = await fetch(`${base}/ready`);
  assert.equal(res.status, 503);
  assert.deepEqual(await res.json(), { ok: false, reasons: ['source kv has not answered yet'] });
  ready = [];
  res = await fetch(`${base}/ready`);
  assert.equal(res.status, 200);
  assert.equal((await fetch(`${base}/health`)).status, 503);
});

test('metrics: what operators graph, with prom-client, and no label that changes with the config', async () => {
  const { createMetrics } = await import('./metrics.js');
  const m = createMetrics();
  m.started(1_000_000);
  m.applied({ ok: true, kind: 'reload', at: 2_000_000, reloadMs: 120 });
  m.applied({ ok: true, kind: 'runtime', at: 3_000_000 });
  m.applied({ ok: false, kind: 'reload', at: 4_000_000, reloadMs: 10_000 });
  m.programRestarted('web');
  m.programRestarted('web');
  const text = await m.render({
    apply: { reloads: 1, runtimeOps: 2, applyFailures: 1, lastApply: { ok: false } },
    sources: [{ name: 'kv', ok: true, stale: false, errors: 0, lastSuccessAt: 5_000_000 }],
    haproxy: { workers: [11], oldWorkers: [9, 10] },
    version: '0.1.0',
  });
  assert.match(text, /^# TYPE haproxy_pilot_reload_duration_seconds histogram$/m);
  assert.match(text, /^haproxy_pilot_reload_duration_seconds_bucket\{le="0\.25"\} 1$/m);
  assert.match(text, /^haproxy_pilot_reload_duration_seconds_count 2$/m);
  assert.match(text, /^haproxy_pilot_last_apply_success_timestamp_seconds 3000$/m);
  assert.match(text, /^haproxy_pilot_applies_total\{kind="reload",outcome="success"\} 1$/m);
  assert.match(text, /^haproxy_pilot_applies_total\{kind="runtime",outcome="success"\} 1$/m);
  assert.match(text, /^haproxy_pilot_applies_total\{kind="reload",outcome="failure"\} 1$/m);
  assert.match(text, /^haproxy_pilot_applies_total\{kind="none",outcome="success"\} 0$/m);
  assert.match(text, /^haproxy_pilot_program_restarts_total\{program="web"\} 2$/m);
  assert.match(text, /^haproxy_pilot_source_last_success_timestamp_seconds\{source="kv"\} 5000$/m);
  assert.match(text, /^haproxy_pilot_haproxy_workers\{state="current"\} 1$/m);
  assert.match(text, /^haproxy_pilot_haproxy_workers\{state="old"\} 2$/m);
  assert.match(text, /^haproxy_pilot_process_cpu_user_seconds_total /m);
  assert.match(text, /^haproxy_pilot_nodejs_heap_size_used_bytes /m);
  assert.match(text, /^haproxy_pilot_nodejs_eventloop_lag_p99_seconds /m);
  assert.doesNotMatch(text, /config_info|hash=/);
  for (const name of text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => l.split(/[{ ]/)[0]!)) assert.match(name, /^haproxy_pilot_/);
});
