/**
 * The confd-era way to apply a change, for comparison: a plain HAProxy in daemon mode, and for
 * each change a new process started with `haproxy -f cfg -p pidfile -D -sf <old pids>` (what
 * confd's and consul-template's reload commands ran). The new process binds its listeners next
 * to the old ones (SO_REUSEPORT) and tells the old process to finish; connections queued on the
 * old process's listening socket when it closes it are reset — the drops this benchmark counts.
 * Every process started is tracked by pid (from the pid file) and stopped at the end.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { execa } from 'execa';

export interface ConfdStyleHaproxy {
  /** Write `text` and start a new process that takes over from the current one. */
  reload(text: string): Promise<void>;
  stop(): Promise<void>;
}

async function readPids(pidFile: string): Promise<number[]> {
  const text = await readFile(pidFile, 'utf8').catch(() => '');
  return text.split(/\s+/).filter(Boolean).map(Number);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

export async function startConfdStyle(options: { bin: string; configPath: string; pidFile: string; text: string }): Promise<ConfdStyleHaproxy> {
  const { bin, configPath, pidFile } = options;
  const started = new Set<number>();
  await writeFile(configPath, options.text);
  await execa(bin, ['-f', configPath, '-p', pidFile, '-D']);
  for (const p of await readPids(pidFile)) started.add(p);
  return {
    reload: async (text) => {
      await writeFile(configPath, text);
      const old = await readPids(pidFile);
      await execa(bin, ['-f', configPath, '-p', pidFile, '-D', '-sf', ...old.map(String)]);
      for (const p of await readPids(pidFile)) started.add(p);
    },
    stop: async () => {
      for (const p of started) if (alive(p)) process.kill(p, 'SIGTERM');
      const deadline = Date.now() + 5000;
      while ([...started].some(alive) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      for (const p of started) if (alive(p)) process.kill(p, 'SIGKILL');
    },
  };
}
