/**
 * The baseline for bench/change-latency.ts: what seed 002's image did with confd. Every
 * `intervalMs` read the prefix (`GET /v1/kv/<prefix>?recurse`, bearer token); when the keys
 * changed, render a whole haproxy.cfg with every server, check it (`haproxy -c`, confd's
 * check_cmd) and reload HAProxy (confd's reload_cmd; here SIGUSR2 to a master-worker master,
 * the cheapest plain reload HAProxy 2.6 has). No runtime API, no coalescing, no confirmation.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { ask, sleep } from './support-latency-probe.js';

export interface Baseline {
  stop(): Promise<void>;
}

function render(port: number, servers: [string, string][]): string {
  return [
    'global',
    '    maxconn 4096',
    '    hard-stop-after 30s',
    'defaults',
    '    mode http',
    '    timeout connect 5s',
    '    timeout client 30s',
    '    timeout server 30s',
    'frontend fe',
    `    bind :${port}`,
    '    default_backend nginx_80',
    'backend nginx_80',
    '    balance roundrobin',
    '    mode http',
    '    option httpchk',
    '    http-check send meth HEAD uri / ver HTTP/1.1 hdr Host localhost',
    // seed 002's template: server {{base .Key}} {{.Value}} check
    ...servers.map(([name, value]) => `    server ${name} ${value} check`),
    '',
  ].join('\n');
}

export async function startBaseline(options: { kvUrl: string; token: string; prefix: string; port: number; intervalMs: number; dir: string }): Promise<Baseline> {
  const cfg = join(options.dir, 'baseline.cfg');
  await writeFile(cfg, render(options.port, []));
  const master: ChildProcess = spawn('haproxy', ['-W', '-db', '-f', cfg], { stdio: ['ignore', 'ignore', 'ignore'] });
  const exited = new Promise<void>((r) => master.on('exit', () => r()));
  // Up when the frontend answers (503: no server yet).
  for (let i = 0; i < 200 && (await ask(options.port, '/')).status === 0; i++) await sleep(25);

  let stopped = false;
  let last = '';
  const loop = (async () => {
    while (!stopped) {
      try {
        const res = await fetch(`${options.kvUrl}/v1/kv/${options.prefix}?recurse`, { headers: { authorization: `Bearer ${options.token}` } });
        const list = res.status === 404 ? [] : ((await res.json()) as { Key: string; Value: string | null }[]);
        const servers = list
          .filter((e) => e.Value !== null)
          .map((e): [string, string] => [e.Key.split('/').pop()!, Buffer.from(e.Value!, 'base64').toString('utf8')]);
        const text = render(options.port, servers);
        if (text !== last) {
          await writeFile(`${cfg}.new`, text);
          await execa('haproxy', ['-c', '-q', '-f', `${cfg}.new`]);
          await rename(`${cfg}.new`, cfg);
          master.kill('SIGUSR2');
          last = text;
        }
      } catch {
        // confd logs and tries again at the next interval
      }
      await sleep(options.intervalMs);
    }
  })();

  return {
    stop: async () => {
      stopped = true;
      await loop;
      master.kill('SIGTERM');
      await exited;
    },
  };
}
