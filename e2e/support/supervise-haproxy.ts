/** Start a real HAProxy master through createHaproxyMaster for a test, and clean up after it. */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { silentLogger } from '../../src/log.js';
import { createHaproxyMaster, type HaproxyMasterOptions } from '../../src/supervise/haproxy.js';
import type { HaproxyMaster } from '../../src/haproxy/master.js';
import { makeTempDir } from './supervise-helpers.js';

export interface LaunchedMaster {
  master: HaproxyMaster;
  dir: string;
  configPath: string;
  masterSocket: string;
}

/**
 * Write `config` to a temp dir and build (not start) a master for it; stopped by pid at test end.
 * Either argument may be a function of the temp dir (for paths in it).
 */
export async function prepareMaster(
  t: TestContext,
  config: string | ((dir: string) => string),
  options: Partial<HaproxyMasterOptions> | ((dir: string) => Partial<HaproxyMasterOptions>) = {},
): Promise<LaunchedMaster> {
  const { dir, cleanup } = await makeTempDir('sup-haproxy');
  const configPath = path.join(dir, 'haproxy.cfg');
  const masterSocket = path.join(dir, 'master.sock');
  const overrides = typeof options === 'function' ? options(dir) : options;
  await fs.writeFile(configPath, typeof config === 'function' ? config(dir) : config);
  const master = createHaproxyMaster({
    bin: process.env.HAPROXY_BIN ?? 'haproxy',
    configPath,
    masterSocket,
    stopDelayMs: 0,
    stopTimeoutMs: 5000,
    reloadTimeoutMs: 10_000,
    log: silentLogger(),
    startTimeoutMs: 15_000,
    ...overrides,
  });
  t.after(async () => {
    const pid = master.status().masterPid;
    if (pid !== undefined) {
      // Stop by pid: our own master's process group, nothing else.
      try {
        process.kill(-pid, 'SIGKILL');
      } catch {
        /* already gone */
      }
      await master.exited;
    }
    await cleanup();
  });
  return { master, dir, configPath, masterSocket };
}
