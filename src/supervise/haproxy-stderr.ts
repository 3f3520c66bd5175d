/**
 * Why HAProxy's lines appeared twice: HAProxy reports proxy and server events twice on purpose,
 * once on stderr (ha_warning/ha_alert: `[WARNING]  (pid) : Proxy web stopped (…)`) and once to
 * the proxy's loggers (send_log). Examples in HAProxy's source (2.6 to 3.x): proxy.c
 * proxy_cond_disable() "Proxy %s stopped (cumulated conns: …)", soft_stop() "Stopping %s %s in
 * %d ms.", pause_proxy() "Pausing %s %s.", hard_stop() "Proxy %s hard-stopped (…)" and "soft-stop
 * running for too long, performing a hard-stop."; server.c's server state changes ("Server be/s1
 * is DOWN, reason: …"); backend.c set_backend_down() "backend 'be' has no server available!".
 * With `log stdout` (the embedded template) both copies reach the container's log.
 *
 * What does not fix it: `-q` / `quiet`. HAProxy then detaches stdin, stdout and stderr (haproxy.c:
 * stdio_quiet(-1) under MODE_QUIET), so `log stdout` writes nowhere: measured on 2.6.12, not one
 * line reaches stdout or stderr, the traffic log included. (And errors.c quiets only messages
 * printed while starting: the runtime events are not what it is for.) Nor is it the master or its
 * startup-logs: the second copy is the worker's own stderr, inherited from the master.
 *
 * So when the config logs to stdout, haproxy-pilot reads HAProxy's stderr (only notices, warnings
 * and alerts: the traffic log stays on the inherited stdout) and drops a worker's copy of those
 * events; the log keeps one. Everything else passes unchanged, the master's lines above all
 * (worker exits, reload results), which no log carries.
 */

const LINE = /^\[(?:WARNING|ALERT|NOTICE)\]\s+\((\d+)\)\s+:\s+(.*)$/;

/** Events HAProxy sends both to stderr and to the proxy's (or global) loggers. */
const ALSO_LOGGED = [
  /^Proxy \S+ stopped \(cumulated conns: /,
  /^Proxy \S+ hard-stopped \(\d+ remaining conns will be closed\)\.$/,
  /^Stopping \S+ \S+ in \d+ ms\.$/,
  /^Pausing \S+ \S+\.$/,
  /^soft-stop running for too long, performing a hard-stop\.$/,
  /^Server \S+\/\S+ (?:is|was) /,
  /^\S+ '\S+' has no server available!$/,
];

/** Whether `line` (from HAProxy's stderr) is a worker's copy of an event HAProxy also logged. */
export function alsoLogged(line: string, masterPid: number | undefined): boolean {
  const m = LINE.exec(line);
  if (!m || Number(m[1]) === masterPid) return false;
  const text = m[2]!;
  return ALSO_LOGGED.some((re) => re.test(text));
}
