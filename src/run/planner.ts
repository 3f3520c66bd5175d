/**
 * POST /plan, behind `haproxy-pilot plan`: the candidate the running pilot would build now —
 * from its sources' latest snapshots (or a snapshot file given in the request) with the settings
 * as SIGHUP would read them — and what applying it would take, applying nothing: no file is
 * written, no password generated, nothing sent to HAProxy.
 */
import { readFile } from 'node:fs/promises';
import { createHmac, randomBytes } from 'node:crypto';
import type { Logger } from '../log.js';
import type { PilotConfig } from '../config/types.js';
import { createBuilder, type Builder, type Candidate } from '../candidate.js';
import { mergeSnapshots } from '../state/merge.js';
import type { Snapshot } from '../sources/source.js';
import type { DryRun } from '../apply/transaction.js';
import type { ApplyKind } from '../apply/transaction.js';
import { parseDiscoveryFile } from '../sources/file/transport.js';
import { fileLayout, flattenKeys } from '../sources/file/layout.js';
import { snapshotOf } from '../sources/common.js';
import { describeError, isPilotError, PilotError } from '../errors.js';

export interface PlanRequest {
  /** A discovery file (DISCOVERY_FILE's yaml or json) that stands for what every source says. */
  snapshot?: { name: string; text: string };
}

export interface PlanAnswer {
  ok: boolean;
  /** The running config (<run dir>/haproxy.cfg) and its path. */
  running?: { path: string; text: string };
  candidate?: { text: string };
  plan?: { kind: ApplyKind; reason?: string; commands: string[] };
  /** Discovered entries the candidate leaves out, and why. */
  excluded?: { source: string; entry: string; reason: string }[];
  warnings?: string[];
  error?: { code: string; message: string };
}

export interface PlannerDeps {
  log: Logger;
  reloadConfig(): PilotConfig;
  /** The builder in force. */
  builder(): Builder;
  snapshots(): Iterable<Snapshot>;
  /** The transaction's verdict: what applying the candidate would do. */
  dryRun(candidate: Candidate): DryRun;
  liveConfig: string;
  now?: () => number;
}

/** The snapshot a discovery file gives, named like the file source's (`file`). */
export function snapshotFromFile(name: string, text: string, log: Logger, at: number): Snapshot {
  try {
    const { doc, locate } = parseDiscoveryFile(name, text);
    return snapshotOf('file', at, flattenKeys(doc), fileLayout(doc, { source: 'file', locate }), log);
  } catch (err) {
    throw new PilotError('E_CONFIG', `plan --snapshot: ${describeError(err)}`, { cause: err });
  }
}

/**
 * Passwords in config lines (`stats auth user:pw`, a userlist's `user … password pw`) shown as a
 * short hash keyed for one answer: the same password gives the same mark in both texts, so a
 * change stays visible, and the secret is never sent.
 */
export function maskSecrets(text: string, key: Buffer): string {
  const hide = (secret: string): string => `<hidden:${createHmac('sha256', key).update(secret).digest('hex').slice(0, 8)}>`;
  return text
    .replace(/^(\s*stats\s+auth\s+[^\s:]+:)(\S+)/gm, (_, head: string, pw: string) => `${head}${hide(pw)}`)
    .replace(/^(\s*user\s+\S+\s+(?:insecure-)?password\s+)(\S+)/gm, (_, head: string, pw: string) => `${head}${hide(pw)}`);
}

export function createPlanner(deps: PlannerDeps): (body: Buffer) => Promise<PlanAnswer> {
  const now = deps.now ?? Date.now;
  return async (body) => {
    try {
      let request: PlanRequest = {};
      if (body.length > 0) {
        try {
          request = JSON.parse(body.toString('utf8')) as PlanRequest;
        } catch {
          throw new PilotError('E_CONFIG', 'plan: the request is not JSON');
        }
      }
      const current = deps.builder();
      const next = deps.reloadConfig();
      // The password in force stays (a generated one is not generated again).
      const builder = createBuilder({ ...current.settings, config: next, statsPassword: next.stats.password ?? current.settings.statsPassword });
      const snapshots = request.snapshot ? [snapshotFromFile(request.snapshot.name, request.snapshot.text, deps.log, now())] : [...deps.snapshots()];
      const desired = mergeSnapshots(snapshots, builder.reserved);
      const candidate = await builder.build(desired);
      const dry = deps.dryRun(candidate);
      const running = await readFile(deps.liveConfig, 'utf8').catch(() => '');
      const key = randomBytes(16);
      return {
        ok: true,
        running: { path: deps.liveConfig, text: maskSecrets(running, key) },
        candidate: { text: maskSecrets(candidate.text, key) },
        plan: dry,
        excluded: desired.excluded,
        warnings: candidate.warnings,
      };
    } catch (err) {
      return { ok: false, error: { code: isPilotError(err) ? err.code : 'E_INTERNAL', message: describeError(err) } };
    }
  };
}
