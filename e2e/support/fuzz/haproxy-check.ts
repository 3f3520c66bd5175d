/**
 * `haproxy -c` the way the product runs it: the candidate (config and certificates) staged in a
 * generation folder (src/apply/generations.ts) and checked there with `-C <stage>`
 * (src/apply/check.ts), so relative certificate paths resolve. HAProxy runs in a network
 * namespace of its own when it can (`unshare -n`): server addresses given as DNS names are
 * looked up with libc during the check, and thousands of generated names must neither wait on
 * nor reach a real resolver.
 */
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGenerations, type Generations } from '../../../src/apply/generations.js';
import { checkConfig } from '../../../src/apply/check.js';
import { isPilotError } from '../../../src/errors.js';

/** Checks run at once (the machine has 2 cores). */
export const CHECK_LANES = 2;

export interface CheckSet {
  text: string;
  files: Readonly<Record<string, string>>;
}

export interface CheckOutcome {
  ok: boolean;
  /** HAProxy's first alert (or why the check could not run). */
  message: string;
  /** Everything HAProxy printed. */
  output: string;
}

function canUnshareNet(): boolean {
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

export class HaproxyChecker {
  checks = 0;
  ms = 0;
  /** One generation folder per concurrent check (a Generations object numbers its stages alone). */
  private readonly free: Generations[];
  private constructor(
    readonly dir: string,
    private readonly bin: string,
    lanes: number,
  ) {
    this.free = Array.from({ length: lanes }, (_, i) => createGenerations(join(dir, `run${i}`)));
  }

  static async create(): Promise<HaproxyChecker> {
    // A memory file system when there is one: staging fsyncs every file, thousands of times here.
    const dir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'pilot-fuzz-check-'));
    const haproxy = process.env.HAPROXY_BIN ?? 'haproxy';
    let bin = haproxy;
    if (canUnshareNet()) {
      bin = join(dir, 'haproxy-offline');
      writeFileSync(bin, `#!/bin/sh\nexec unshare -n ${haproxy} "$@"\n`);
      chmodSync(bin, 0o755);
    }
    return new HaproxyChecker(dir, bin, CHECK_LANES);
  }

  async check(set: CheckSet): Promise<CheckOutcome> {
    const started = Date.now();
    this.checks++;
    const generations = this.free.pop();
    if (!generations) throw new Error(`more than ${CHECK_LANES} checks at once`);
    const stage = await generations.stage(set);
    try {
      const r = await checkConfig({ bin: this.bin, path: stage.configPath, chdir: stage.dir, timeoutMs: 60_000 });
      return { ok: true, message: '', output: r.output };
    } catch (err) {
      if (!isPilotError(err, 'E_CHECK')) throw err;
      const output = String(err.details?.output ?? '');
      return { ok: false, message: err.message.split(stage.dir).join('<stage>'), output: output.split(stage.dir).join('<stage>') };
    } finally {
      this.ms += Date.now() - started;
      if (process.env.FUZZ_DEBUG) {
        process.stderr.write(`check ${Date.now() - started} ms, ${set.text.length} chars, ${Object.keys(set.files).length} files\n`);
        if (Date.now() - started > 1000) (await import('node:fs')).writeFileSync(`${tmpdir()}/fuzz-slow-check.cfg`, set.text);
      }
      await rm(stage.dir, { recursive: true, force: true });
      this.free.push(generations);
    }
  }

  close(): Promise<void> {
    return rm(this.dir, { recursive: true, force: true });
  }
}

/** Runs `fn` over `items`, at most `limit` at a time, results in order. */
export async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
