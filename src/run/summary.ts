/**
 * The one line that says, at start, where everything is: what HAProxy listens on, the stats page
 * and who may read it, the generated password's file, the pilot's own listeners.
 */
import { bindPorts, portKey } from '../apply/ports.js';
import type { Settings } from '../candidate.js';

export function startSummary(
  configText: string,
  settings: Settings,
  passwordFile: string | undefined,
  listeners: readonly { owner: string; host: string; port: number }[],
): { message: string; fields: Record<string, unknown> } {
  const { stats } = settings.config;
  const frontends = bindPorts(configText).map(portKey);
  const statsUrl = stats.port > 0 ? `http://<host>:${stats.port}${stats.uri}` : undefined;
  const statsAccess = stats.port === 0 ? 'off' : stats.auth === 'none' ? 'no password' : `user ${stats.user}, password ${stats.password !== undefined ? 'from STATS_PASSWORD' : `in ${passwordFile ?? settings.config.stats.passwordFile}`}`;
  const parts = [
    `started: HAProxy listens on ${frontends.join(', ') || 'nothing'}`,
    statsUrl ? `stats page ${statsUrl} (${statsAccess})` : 'no stats page',
    ...listeners.map((l) => `${l.owner} on http://${l.host.includes(':') ? `[${l.host}]` : l.host}:${l.port}`),
  ];
  return {
    message: parts.join('; '),
    fields: { frontends, stats: statsUrl ? { url: statsUrl, access: statsAccess } : null, listeners },
  };
}
