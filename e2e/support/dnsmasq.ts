/**
 * A real DNS server for tests: dnsmasq on a loopback port, answering from a hosts file that the
 * test can rewrite (dnsmasq re-reads --addn-hosts on SIGHUP). `enter` runs it inside another
 * network namespace (e.g. ['nsenter', '--target', String(pid), '--net']) so a haproxy-pilot
 * started by startPilot() can reach it on its own 127.0.0.1. Stopped by pid.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Dnsmasq {
  port: number;
  /** Replace the answers: name → IPv4 addresses. */
  setHosts(hosts: Record<string, string[]>): Promise<void>;
  /** Stop answering (SIGSTOP: queries time out, as with a DNS server that hangs), and answer again. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export async function startDnsmasq(options: { port: number; hosts: Record<string, string[]>; enter?: string[] }): Promise<Dnsmasq> {
  const dir = await mkdtemp(join(tmpdir(), 'pilot-dns-'));
  const hostsFile = join(dir, 'hosts');
  const writeHosts = (hosts: Record<string, string[]>) =>
    writeFile(hostsFile, Object.entries(hosts).flatMap(([name, ips]) => ips.map((ip) => `${ip} ${name}\n`)).join(''));
  await writeHosts(options.hosts);
  const args = [
    'dnsmasq', '--keep-in-foreground', '--no-daemon', '--log-facility=-',
    `--port=${options.port}`, '--listen-address=127.0.0.1', '--bind-interfaces',
    '--no-resolv', '--no-hosts', `--addn-hosts=${hostsFile}`, '--local-ttl=1', '--neg-ttl=1',
    '--pid-file=', '--user=root', '--conf-file=/dev/null',
  ];
  const command = [...(options.enter ?? []), ...args];
  const child: ChildProcess = spawn(command[0]!, command.slice(1), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  // dnsmasq prints "started, version …" once it has bound its port.
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`dnsmasq did not start: ${stderr}`)), 5000);
    const check = () => {
      if (/started, version/.test(stderr)) {
        clearTimeout(timer);
        resolve();
      }
    };
    child.stderr!.on('data', check);
    child.on('exit', () => {
      clearTimeout(timer);
      reject(new Error(`dnsmasq exited: ${stderr}`));
    });
  });
  return {
    port: options.port,
    setHosts: async (hosts) => {
      await writeHosts(hosts);
      child.kill('SIGHUP');
    },
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    stop: async () => {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
