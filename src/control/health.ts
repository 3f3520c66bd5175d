/** Why /health is 503, or nothing. The last pass covers render failures as well as apply failures. */
export function healthReasons(
  haproxy: { masterPid?: number; workers: number[] },
  lastPass: { ok: boolean; error?: { message: string } } | undefined,
  staleSources: string[],
  programs: string[] = [],
): string[] {
  const reasons: string[] = [];
  if (!haproxy.masterPid) reasons.push('the HAProxy master is not running');
  else if (haproxy.workers.length === 0) reasons.push('no HAProxy worker is running');
  if (lastPass && !lastPass.ok) reasons.push(`the last change was not applied (HAProxy keeps its running config): ${lastPass.error?.message ?? 'unknown error'}`);
  return [...reasons, ...staleSources, ...programs];
}

/**
 * Helper programs that do not run: `threshold` failed starts in a row (PILOT_PROGRAM_FAILURES),
 * or one that will not be tried again after failing.
 */
export function programReasons(
  programs: readonly { name: string; origin: string; failures: number; lastError?: string; gaveUp?: boolean; state: string }[],
  threshold: number,
): string[] {
  return programs
    .filter((p) => p.failures >= threshold || (p.gaveUp === true && p.state === 'failed'))
    .map((p) => {
      const count = p.gaveUp && p.failures < threshold ? 'failed and is not restarted' : `failed to start ${p.failures} times in a row`;
      return `program ${p.name} (${p.origin}) ${count}: ${p.lastError ?? 'unknown error'}`;
    });
}

/**
 * Why /ready is 503, or nothing: ready means the first config is applied (HAProxy runs it) and
 * every source has answered once with its data. Unlike /health, it does not turn back: a source
 * failing later keeps its last good data (and /health says so).
 */
export function readyReasons(firstConfigApplied: boolean, sources: readonly { name: string; lastSuccessAt?: number; lastError?: string }[]): string[] {
  const reasons: string[] = [];
  if (!firstConfigApplied) reasons.push('starting: the first config is not applied yet');
  for (const s of sources) {
    if (s.lastSuccessAt === undefined) reasons.push(`source ${s.name} has not answered yet${s.lastError ? ` (last error: ${s.lastError})` : ''}`);
  }
  return reasons;
}
