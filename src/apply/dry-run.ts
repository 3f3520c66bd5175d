/**
 * What applying a candidate would do, applying nothing (`haproxy-pilot plan`): the same decision
 * the transaction makes (transaction.ts plan()), from its public parts: nothing when the config
 * and files are the same; a reload when a file changed or the config changed beyond servers;
 * otherwise the planner's runtime API commands (plan.ts planApply). Pure.
 */
import { candidateHash, type ApplyCandidate } from './transaction.js';
import { configSkeleton, planApply, type Plan, type RunningBackend } from './plan.js';

export interface Installed {
  /** The config and files HAProxy runs. */
  text: string;
  files: Readonly<Record<string, string>>;
  /** What the running HAProxy holds (runningAfter() after each apply). */
  running: readonly RunningBackend[];
}

export type DryRun = Plan & { commands: string[] };

export function dryRunPlan(installed: Installed, candidate: ApplyCandidate): DryRun {
  if (candidateHash(installed) === candidateHash(candidate)) return { kind: 'none', commands: [] };
  if (candidateHash({ text: '', files: installed.files }) !== candidateHash({ text: '', files: candidate.files })) {
    return { kind: 'reload', reason: 'certificates or other files changed', commands: [] };
  }
  const names = [...installed.running.map((b) => b.name), ...candidate.backends.map((b) => b.name)];
  const restChanged = configSkeleton(installed.text, names) !== configSkeleton(candidate.text, names);
  const plan = planApply({ running: installed.running, next: candidate.backends, restChanged });
  return { ...plan, commands: plan.kind === 'runtime' ? plan.ops.map((o) => o.command) : [] };
}
