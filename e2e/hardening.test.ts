/**
 * Issue 13's defects, end to end: the real binary as PID 1 of fresh namespaces with real HAProxy.
 * Each test reproduces one defect as a user would meet it.
 */
import { test, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startPilot, type PilotProcess } from './support/pilot-process.js';

const running: PilotProcess[] = [];
const dirs: string[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((p) => p.kill()));
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

async function pilot(env: Record<string, string> = {}): Promise<PilotProcess> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-e2e-'));
  dirs.push(dir);
  const p = startPilot({ PILOT_RUN_DIR: dir, STATS_AUTH: 'none', PILOT_STOP_TIMEOUT: '6s', ...env });
  running.push(p);
  return p;
}

const isRunning = (line: { msg?: string }) => line.msg === 'HAProxy is running';
const isListening = (line: { msg?: string }) => line.msg === 'control server listening';

/** Sends `payload` as is to 127.0.0.1:<port> inside the pilot's namespaces; what came back. */
async function rawRequest(p: PilotProcess, port: number, payload: string): Promise<string> {
  const script = `const s=require('net').connect(${port},'127.0.0.1',()=>s.write(${JSON.stringify(payload)}));let o='';s.on('data',d=>o+=d);s.on('close',()=>{process.stdout.write(o)});s.on('error',e=>{process.stdout.write('ERROR '+e.code)});setTimeout(()=>{process.stdout.write(o);process.exit(0)},3000)`;
  return (await p.exec([process.execPath, '-e', script])).stdout;
}

test('one malformed request to the control port is a 400: HAProxy keeps running, the pilot keeps answering', async () => {
  const p = await pilot();
  await p.waitForLog(isRunning);
  await p.waitForLog(isListening);
  const answer = await rawRequest(p, 7778, 'GET http://[::1/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
  assert.match(answer, /^HTTP\/1\.1 400 /);
  assert.equal((await p.http('/health', 7778)).status, 200);
  assert.equal((await p.http('/')).status, 200, 'HAProxy still serves the demo');
  const early = await Promise.race([p.exited, new Promise((r) => setTimeout(() => r('running'), 300))]);
  assert.equal(early, 'running');
});
