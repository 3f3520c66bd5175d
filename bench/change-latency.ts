/**
 * Change latency: time from a store write to the first request served by the new server through
 * HAProxy, for haproxy-pilot's sources (kv polling at the default 5 s and at 1 s, kv blocking
 * queries, etcd watch, ZooKeeper watch) next to a confd-style poll-and-full-reload baseline, in
 * one run on one machine. Writes the table to docs/benchmarks.md between the change-latency markers.
 *
 *   npx tsc -p . && node dist/bench/change-latency.js [--quick] [--only etcd,zookeeper [--rows zookeeper]]
 *
 * `--only` runs the scenarios whose names contain one of the words; the rows matching `--rows`
 * (default: all of them) then replace or join their rows in the table, with a note saying when
 * they were measured and what the other scenarios of the same run measured (rows compare within
 * one run).
 *
 * Runs in a network namespace of its own (created here, deleted at the end) so HAProxy's ports
 * (:80, :5000, :1936) and the control port :7778 cannot clash with anything on the machine.
 * Needs root (ip netns), haproxy, etcd, dnsmasq and ZooKeeper (Debian's, with java). The
 * Consul-style KV endpoint is the protocol fixture of the e2e tests (no Consul / Container Cloud
 * server can be installed here).
 */
import { spawnSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem, release } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { startConsulKvFixture } from '../e2e/support/sources-consul-kv-fixture.js';
import { startEtcd } from '../e2e/support/sources-etcd.js';
import { startDnsmasq } from '../e2e/support/dnsmasq.js';
import { startNamedServers, stats, type Stats } from './support-latency-probe.js';
import { baselineKv, pilotEtcd, pilotKv, TOKEN, type Scenario } from './support-latency-scenarios.js';
import { pilotZookeeperServer, pilotZookeeperService } from './support-latency-zookeeper.js';

const SELF = fileURLToPath(import.meta.url);
const DOC = fileURLToPath(new URL('../../docs/benchmarks.md', import.meta.url));
const START = '<!-- bench:change-latency:start -->';
const END = '<!-- bench:change-latency:end -->';

const quick = process.argv.includes('--quick');
const argOf = (flag: string): string[] | undefined => {
  const i = process.argv.indexOf(flag);
  return i < 0 ? undefined : (process.argv[i + 1] ?? '').split(',').filter((w) => w !== '');
};
const only = argOf('--only');
const rowsFilter = argOf('--rows') ?? only;
const matches = (words: string[] | undefined, name: string): boolean => words === undefined || words.some((w) => name.toLowerCase().includes(w.toLowerCase()));
const n = (full: number): number => (quick ? 2 : full);

// Pauses between samples span a whole poll interval: a write lands at a uniformly random point of
// the poll cycle (a shorter pause would correlate the phase with the previous sample's detection).
const allScenarios: Scenario[] = [
  baselineKv('baseline: confd-style poll 5 s + full reload', 'poll the KV endpoint every 5 s, render every server, `haproxy -c`, SIGUSR2 reload', n(10), [200, 5200], 5000),
  pilotKv('pilot kv polling, KV_INTERVAL=5s (default)', 'seed 002 variables only', n(10), [200, 5200], {}),
  baselineKv('baseline: confd-style poll 1 s + full reload', 'as above, every 1 s', n(10), [200, 1200], 1000),
  pilotKv('pilot kv polling, KV_INTERVAL=1s', 'seed 002 variables + KV_INTERVAL=1s', n(10), [200, 1200], { KV_INTERVAL: '1s' }),
  pilotKv('pilot kv blocking queries, KV_WATCH=1', 'seed 002 variables + KV_WATCH=1', n(10), [400, 1200], { KV_WATCH: '1' }),
  pilotKv('pilot kv blocking, address change (runtime API)', 'KV_WATCH=1; one key whose value moves to the new server', n(10), [400, 1200], { KV_WATCH: '1' }, true),
  pilotEtcd('pilot etcd watch (seed 001 layout, DNS)', 'ETCD_ENDPOINTS + HAPROXY_ID; new service via url_beg, servers by DNS', n(10), [400, 1200]),
  pilotZookeeperServer('pilot zookeeper watch, server node replaced (runtime API)', 'ZK_SERVERS + ZK_PATH (seed 004); one transaction removes the old server node and creates the new one', n(10), [400, 1200]),
  pilotZookeeperService('pilot zookeeper watch, new service (reload)', 'ZK_SERVERS + ZK_PATH; one transaction adds a service node with its server node and removes the previous service', n(10), [400, 1200]),
];
const scenarios = allScenarios.filter((s) => matches(only, s.name));

async function inside(): Promise<void> {
  const total = scenarios.reduce((a, s) => a + s.samples, 0) + 2;
  const kv = await startConsulKvFixture({ token: TOKEN });
  const servers = await startNamedServers(total, 9100);
  const etcd = await startEtcd(1);
  const dnsPort = 5353;
  const names: Record<string, string[]> = {};
  for (let k = 0; k < total; k++) names[`svc${k}`] = ['127.0.0.1'];
  const dns = await startDnsmasq({ port: dnsPort, hosts: names });
  const results: { scenario: Scenario; samples: number[]; stats: Stats }[] = [];
  try {
    for (const scenario of scenarios) {
      const began = Date.now();
      process.stderr.write(`${scenario.name}: ${scenario.samples} samples… `);
      const samples = await scenario.run({ kv, servers, etcdEndpoint: etcd.endpoints[0]!, dnsPort }, scenario.samples, scenario.pause);
      const s = stats(samples);
      results.push({ scenario, samples, stats: s });
      process.stderr.write(`median ${s.median.toFixed(0)} ms, p90 ${s.p90.toFixed(0)} ms (${((Date.now() - began) / 1000).toFixed(0)} s)\n`);
    }
  } finally {
    await dns.stop();
    await etcd.close();
    await servers.close();
    await kv.close();
  }
  if (only !== undefined) {
    const note = await separateRunNote(results);
    for (const r of results) process.stdout.write(`${row(r, NaN)}\n`);
    process.stdout.write(`${note}\n`);
    if (!quick) await writeRows(results.filter((r) => matches(rowsFilter, r.scenario.name)), note);
    return;
  }
  const table = await section(results);
  process.stdout.write(`${table}\n`);
  if (!quick) await writeDoc(table);
}

async function versions(): Promise<{ haproxy: string; etcd: string; dnsmasq: string; zookeeper: string }> {
  const first = async (cmd: string, args: string[]): Promise<string> => (await execa(cmd, args, { reject: false })).stdout.split('\n')[0] ?? '';
  return {
    haproxy: (await first('haproxy', ['-v'])).replace(/ - https.*$/, ''),
    etcd: await first('etcd', ['--version']),
    dnsmasq: (await first('dnsmasq', ['--version'])).replace(/ +Copyright.*$/, ''),
    zookeeper: `ZooKeeper ${(await first('dpkg-query', ['-W', '-f', '${Version}', 'zookeeper'])) || 'unknown'} (Debian)`,
  };
}

const ms = (x: number): string => (Number.isFinite(x) ? `${Math.round(x)}` : '–');

async function section(results: { scenario: Scenario; samples: number[]; stats: Stats }[]): Promise<string> {
  const v = await versions();
  const base5 = results.find((r) => r.scenario.name.startsWith('baseline: confd-style poll 5 s'))?.stats.median ?? NaN;
  const cpu = cpus();
  const rows = results.map((r) => row(r, base5));
  return [
    '## Change latency',
    '',
    'Time from a store write to the first request served by the new server through HAProxy',
    '(fresh connection per probe, one probe every ~5 ms). Each sample replaces the running server',
    'by a new one (KV: one key deleted and one added in the same instant; etcd: a new service',
    'added and the old one removed in one transaction, its server found by DNS; ZooKeeper: one',
    'transaction replaces a server node, or adds a service node and removes the previous one), after a random',
    'pause so writes land at random points of the poll cycle. The baseline is what seed 002\'s',
    'image did with confd: poll the same KV endpoint, render a config with every server,',
    '`haproxy -c`, plain reload (SIGUSR2 to a master-worker master). haproxy-pilot runs with its',
    'defaults (PILOT_QUIET_MIN 200 ms: changes are coalesced before they are applied).',
    '',
    '| scenario | setup | samples | median ms | p90 ms | min–max ms | median vs baseline 5 s |',
    '|---|---|---|---|---|---|---|',
    ...rows,
    '',
    `Machine: ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, ${(totalmem() / 2 ** 30).toFixed(1)} GiB, Linux ${release()}; ` +
      `Node ${process.version}; ${v.haproxy}; ${v.etcd}; ${v.dnsmasq}; ${v.zookeeper}. Run ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, ` +
      'while other work ran on the machine (2 cores): single figures are noisy, compare rows of the same run.',
    'The KV endpoint is the Consul KV API protocol fixture of the e2e tests (no Consul or Container Cloud server can be installed here).',
    '',
    'Run: `npx tsc -p . && node dist/bench/change-latency.js` (root: it makes a network namespace; about 3–4 minutes; `--quick` for a smoke run that writes nothing;',
    '`--only <words> [--rows <words>]` runs the scenarios named so and writes their rows, with a note on their run).',
  ].join('\n');
}

type Result = { scenario: Scenario; samples: number[]; stats: Stats };

function row({ scenario, stats: s }: Result, base5: number): string {
  const ratio = Number.isFinite(base5) ? `${(s.median / base5).toFixed(2)}×` : '–';
  return `| ${scenario.name} | ${scenario.how} | ${s.n} | ${ms(s.median)} | ${ms(s.p90)} | ${ms(s.min)}–${ms(s.max)} | ${ratio} |`;
}

/** The note under the table for rows measured in a run of their own (--only). */
async function separateRunNote(results: Result[]): Promise<string> {
  const v = await versions();
  const cpu = cpus();
  const written = results.filter((r) => matches(rowsFilter, r.scenario.name));
  const others = results.filter((r) => !written.includes(r));
  return [
    `Separate run for ${written.map((r) => `"${r.scenario.name}"`).join(', ')}: ${new Date().toISOString().slice(0, 16).replace('T', ' ')} UTC, `,
    `\`--only ${only!.join(',')}\`, on ${cpu.length} × ${cpu[0]?.model ?? 'unknown CPU'}, Linux ${release()} (load average ${loadavg()[0]!.toFixed(0)}: other work ran); Node ${process.version}; ${v.haproxy}; ${v.zookeeper}`,
    others.length > 0
      ? `; in the same run ${others.map((r) => `"${r.scenario.name}" measured median ${ms(r.stats.median)} ms, p90 ${ms(r.stats.p90)} ms (${r.stats.n} samples)`).join(', ')}: compare with those, not with the rows of the other run (no baseline in this run: –).`
      : ' (no baseline in this run: –).',
  ].join('');
}

/** Replaces (or adds after the last row) the rows of `results` in the table, and their note. */
async function writeRows(results: Result[], note: string): Promise<void> {
  const doc = await readFile(DOC, 'utf8');
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  if (a < 0 || b < a) throw new Error(`${DOC} has no change-latency section: run without --only first`);
  const lines = doc.slice(a, b).split('\n');
  for (const r of results) {
    const text = row(r, NaN);
    const at = lines.findIndex((l) => l.startsWith(`| ${r.scenario.name} |`));
    if (at >= 0) lines[at] = text;
    else {
      let last = -1;
      lines.forEach((l, i) => (l.startsWith('| ') && !l.startsWith('|---') ? (last = i) : undefined));
      lines.splice(last + 1, 0, text);
    }
  }
  const prefix = note.slice(0, note.indexOf(':'));
  const old = lines.findIndex((l) => l.startsWith(`${prefix}:`));
  if (old >= 0) lines[old] = note;
  else {
    const machine = lines.findIndex((l) => l.startsWith('Machine: '));
    lines.splice(machine >= 0 ? machine + 1 : lines.length - 1, 0, note);
  }
  await writeFile(DOC, `${doc.slice(0, a)}${lines.join('\n')}${doc.slice(b)}`);
  process.stderr.write(`wrote ${results.length} rows to ${DOC}\n`);
}

async function writeDoc(table: string): Promise<void> {
  const block = `${START}\n${table}\n${END}`;
  let doc: string;
  try {
    doc = await readFile(DOC, 'utf8');
  } catch {
    doc = '# Benchmarks\n\nFigures written by the scripts in `bench/`; each section says how to run it.\n\n';
  }
  const a = doc.indexOf(START);
  const b = doc.indexOf(END);
  const next = a >= 0 && b > a ? `${doc.slice(0, a)}${block}${doc.slice(b + END.length)}` : `${doc.replace(/\n*$/, '\n\n')}${block}\n`;
  await mkdir(dirname(DOC), { recursive: true });
  await writeFile(DOC, next);
  process.stderr.write(`wrote ${DOC}\n`);
}

async function outside(): Promise<void> {
  const ns = `pilot-bench-${process.pid}`;
  await execa('ip', ['netns', 'add', ns]);
  try {
    await execa('ip', ['netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up']);
    const r = spawnSync('ip', ['netns', 'exec', ns, process.execPath, SELF, '--inside', ...process.argv.slice(2)], { stdio: 'inherit' });
    process.exitCode = r.status ?? 1;
  } finally {
    await execa('ip', ['netns', 'delete', ns], { reject: false });
  }
}

if (process.argv.includes('--inside')) await inside();
else await outside();
