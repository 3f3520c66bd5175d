/**
 * The one line that says, at start, where everything is: what HAProxy listens on (by proxy), the
 * stats page and who may read it, where a generated password is, the Prometheus exporter and
 * whether it asks for credentials, the pilot's own listeners (control server, push endpoints)
 * and the run directory with the running config.
 */
import { configSections } from '../haproxy/config-words.js';
import type { Settings } from '../candidate.js';

export interface Frontend {
  /** The proxy's name (`frontend stats`, `listen api`). */
  name: string;
  binds: string[];
}

/** Every frontend and listen section with what it binds, from the config as HAProxy reads it. */
export function frontendsOf(configText: string): Frontend[] {
  const out: Frontend[] = [];
  for (const section of configSections(configText)) {
    if (section.keyword !== 'frontend' && section.keyword !== 'listen') continue;
    const binds: string[] = [];
    for (const { words } of section.body) {
      if (words[0] !== 'bind' || words[1] === undefined) continue;
      binds.push(...words[1].split(',').filter((t) => t !== ''));
    }
    if (binds.length > 0) out.push({ name: section.name, binds });
  }
  return out;
}

const url = (host: string, port: number): string => `http://${host.includes(':') ? `[${host}]` : host}:${port}`;

export function startSummary(
  configText: string,
  settings: Settings,
  passwordFile: string | undefined,
  listeners: readonly { owner: string; host: string; port: number }[],
): { message: string; fields: Record<string, unknown> } {
  const { stats, haproxy } = settings.config;
  const frontends = frontendsOf(configText);
  const statsUrl = stats.port > 0 ? `http://<host>:${stats.port}${stats.uri}` : undefined;
  const passwordFrom = stats.password !== undefined ? 'given in STATS_PASSWORD or STATS_PASSWORD_FILE' : `generated, in ${passwordFile ?? stats.passwordFile}`;
  const statsAccess = stats.port === 0 ? 'off' : stats.auth === 'none' ? 'no password' : `user ${stats.user}, password ${passwordFrom}`;
  const metricsUrl = settings.hasPrometheus && stats.port > 0 ? `http://<host>:${stats.port}/metrics` : undefined;
  const metricsAccess = stats.prometheusAuth === 'basic' && stats.auth === 'basic' ? 'the stats credentials' : 'no credentials';
  const own = listeners.map((l) => ({ owner: l.owner, url: url(l.host, l.port) }));
  const parts = [
    `started: HAProxy listens on ${frontends.map((f) => `${f.binds.join(' ')} (${f.name})`).join(', ') || 'nothing'}`,
    statsUrl ? `stats page ${statsUrl} (${statsAccess})` : 'no stats page',
    ...(metricsUrl ? [`Prometheus ${metricsUrl} (${metricsAccess})`] : []),
    ...own.map((l) => `${l.owner === 'PILOT_CONTROL_ADDR' ? 'control' : l.owner} ${l.url}${l.owner === 'PILOT_CONTROL_ADDR' ? ' (/health /ready /status /metrics)' : ''}`),
    `running config ${haproxy.configPath}`,
  ];
  return {
    message: parts.join('; '),
    fields: {
      frontends,
      stats: statsUrl ? { url: statsUrl, access: statsAccess } : null,
      prometheus: metricsUrl ? { url: metricsUrl, access: metricsAccess } : null,
      listeners: own,
      runDir: haproxy.runDir,
    },
  };
}
