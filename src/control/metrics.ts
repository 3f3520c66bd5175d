/**
 * haproxy-pilot's own counters in the Prometheus text format (0.0.4). HAProxy's traffic metrics
 * come from its built-in exporter on the stats port; these say how the pilot itself is doing.
 */

export interface MetricsSnapshot {
  apply?: {
    reloads: number;
    runtimeOps: number;
    applyFailures: number;
    configHash?: string;
    lastApply?: { ok: boolean };
  };
  /** Per source; `errors` is the number of failed reads since start, when the loop counts them. */
  sources?: readonly { name: string; ok: boolean; stale: boolean; errors?: number }[];
  /** haproxy-pilot's version, for config_info. */
  version?: string;
  /** Lines (log and program output) dropped because stdout/stderr was not being read. */
  log?: { dropped: number };
}

export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const PREFIX = 'haproxy_pilot_';

/** Label values escape backslash, double quote and newline (exposition format). */
export function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function labels(pairs: Record<string, string>): string {
  const body = Object.entries(pairs)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(',');
  return body ? `{${body}}` : '';
}

export function formatMetrics(m: MetricsSnapshot): string {
  const lines: string[] = [];
  const metric = (name: string, type: 'counter' | 'gauge', help: string, samples: [Record<string, string>, number][]) => {
    lines.push(`# HELP ${PREFIX}${name} ${help}`, `# TYPE ${PREFIX}${name} ${type}`);
    for (const [l, v] of samples) lines.push(`${PREFIX}${name}${labels(l)} ${Number.isFinite(v) ? v : 0}`);
  };
  const a = m.apply;
  metric('reloads_total', 'counter', 'HAProxy reloads confirmed by the master.', [[{}, a?.reloads ?? 0]]);
  metric('apply_failures_total', 'counter', 'Applies that failed and kept the running config.', [[{}, a?.applyFailures ?? 0]]);
  metric('runtime_ops_total', 'counter', 'Runtime API commands sent instead of reloads.', [[{}, a?.runtimeOps ?? 0]]);
  const sources = m.sources ?? [];
  metric('source_errors_total', 'counter', 'Failed reads per discovery source.', sources.map((s) => [{ source: s.name }, s.errors ?? 0]));
  metric('source_up', 'gauge', '1 when the last read of the source succeeded.', sources.map((s) => [{ source: s.name }, s.ok ? 1 : 0]));
  metric('source_stale', 'gauge', '1 when the source serves its last good snapshot after errors.', sources.map((s) => [{ source: s.name }, s.stale ? 1 : 0]));
  // No apply yet counts as success: HAProxy runs the checked initial config.
  metric('last_apply_success', 'gauge', '1 when the last apply succeeded.', [[{}, a?.lastApply && !a.lastApply.ok ? 0 : 1]]);
  metric('log_dropped_total', 'counter', 'Log and program output lines dropped because stdout/stderr was full (not read).', [[{}, m.log?.dropped ?? 0]]);
  metric('config_info', 'gauge', 'The running config (sha256) and haproxy-pilot version.', [[{ hash: a?.configHash ?? '', version: m.version ?? '' }, 1]]);
  return `${lines.join('\n')}\n`;
}
