/** Why /health is 503, or nothing. The last pass covers render failures as well as apply failures. */
export function healthReasons(
  haproxy: { masterPid?: number; workers: number[] },
  lastPass: { ok: boolean; error?: { message: string } } | undefined,
  staleSources: string[],
): string[] {
  const reasons: string[] = [];
  if (!haproxy.masterPid) reasons.push('the HAProxy master is not running');
  else if (haproxy.workers.length === 0) reasons.push('no HAProxy worker is running');
  if (lastPass && !lastPass.ok) reasons.push(`the last change was not applied (HAProxy keeps its running config): ${lastPass.error?.message ?? 'unknown error'}`);
  return [...reasons, ...staleSources];
}
