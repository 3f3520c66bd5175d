/**
 * The apply path as the product wires it, against a real HAProxy master: the embedded templates
 * (createBuilder over a loaded config), the generation folders, `installFirst`, the product's
 * own supervisor (createHaproxyMaster, `-C <live>`) and the transaction. Tests hand it desired
 * states and look at what HAProxy serves.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/log.js';
import { loadConfig } from '../../src/config/load.js';
import type { DiscoveredBackend } from '../../src/state/model.js';
import type { DesiredState } from '../../src/state/merge.js';
import { createBuilder, type Builder, type Candidate } from '../../src/candidate.js';
import { createGenerations, type Generations } from '../../src/apply/generations.js';
import { createTransaction, installFirst, type Transaction } from '../../src/apply/transaction.js';
import { createHaproxyMaster } from '../../src/supervise/haproxy.js';
import type { HaproxyMaster } from '../../src/haproxy/master.js';

export interface TransactionRig {
  dir: string;
  generations: Generations;
  master: HaproxyMaster;
  transaction: Transaction;
  /** A candidate from the embedded templates for these backends (and files), with `env` on top of the rig's. */
  candidate(backends: DiscoveredBackend[], options?: { files?: Record<string, string>; env?: Record<string, string> }): Promise<Candidate>;
  close(): Promise<void>;
}

const BASE_ENV = { STATS_PORT: '0', PILOT_DEMO: 'off', HAPROXY_HARD_STOP_AFTER: '5s', HAPROXY_SERVER_STATE_FILE: 'off', PILOT_LOG_LEVEL: 'silent' };

export async function startTransactionRig(initial: DiscoveredBackend[], env: Record<string, string> = {}): Promise<TransactionRig> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-transaction-e2e-'));
  const builderFor = (extra: Record<string, string> = {}): Builder =>
    createBuilder({
      config: loadConfig({ env: { ...BASE_ENV, PILOT_RUN_DIR: dir, ...env, ...extra }, readFile: (p) => readFileSync(p, 'utf8'), fileExists: existsSync }),
      hasPrometheus: false,
    });
  const candidate = (backends: DiscoveredBackend[], options: { files?: Record<string, string>; env?: Record<string, string> } = {}): Promise<Candidate> => {
    const desired: DesiredState = { keys: {}, backends, files: options.files ?? {}, fileSources: {}, excluded: [] };
    return builderFor(options.env).build(desired);
  };
  const generations = createGenerations(dir);
  const deps = { bin: process.env.HAPROXY_BIN ?? 'haproxy', generations, relativePaths: true, log: silentLogger() };
  const first = await candidate(initial);
  await installFirst(deps, first);
  const master = createHaproxyMaster({
    bin: deps.bin,
    configPath: generations.liveConfig,
    chdir: generations.liveDir,
    masterSocket: join(dir, 'master.sock'),
    stopDelayMs: 0,
    stopTimeoutMs: 5000,
    reloadTimeoutMs: 10_000,
    log: silentLogger(),
  });
  await master.start();
  const transaction = createTransaction({ ...deps, master, initial: first });
  return {
    dir,
    generations,
    master,
    transaction,
    candidate,
    close: async () => {
      await master.stop('fast').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
