/**
 * An environment variable family as a fuzz family: the generated variables (on top of a valid
 * base) go through loadConfig, createBuilder and a build with a fixed discovered snapshot (an
 * HTTP-routed backend with a DNS name, an unrouted one, a tcp listen), so settings meet
 * discovery in the render. Properties per value:
 *
 *  - loadConfig throws nothing but PilotError('E_CONFIG'), each of whose lines names a variable
 *    that was set; createBuilder throws nothing but PilotError;
 *  - what loadConfig accepted, the build renders (validation of the settings and of the view
 *    agree), and the render holds what the accepted settings should produce (oracle.ts);
 *  - helper programs: an accepted command is a non-empty argv without NUL.
 */
import assert from 'node:assert/strict';
import type fc from 'fast-check';
import { isPilotError } from '../../../src/errors.js';
import { shownKey } from '../../../src/state/validate.js';
import type { PilotConfig } from '../../../src/config/types.js';
import type { Snapshot } from '../../../src/sources/source.js';
import { builderFor, load, onlyPilotErrors, render, stringsIn } from './pipeline.js';
import { shapeOf } from './oracle.js';
import type { Family, Outcome } from './run.js';

export interface EnvValue {
  env: Record<string, string>;
  /** Files the loader may read (STATS_PASSWORD_FILE, PILOT_CONFIG). */
  files?: Record<string, string>;
}

/** What every env value starts from (a fuzzed variable replaces its entry). */
export const ENV_BASE: Record<string, string> = { PILOT_RUN_DIR: '/run/haproxy-pilot-fuzz', PILOT_DEMO: 'off', STATS_PASSWORD: 'stats-Pw_1' };

export const FIXED_SNAPSHOT: Snapshot = {
  source: 'fz',
  at: 0,
  keys: {},
  backends: [
    { name: 'fz_site', mode: 'http', servers: [{ name: 'a', host: '10.0.0.1', port: 80 }], dns: [{ name: 'site.example', port: 80, slots: 2 }], route: { domain: 'site.example' }, source: 'fz' },
    { name: 'fz_kv', mode: 'http', servers: [{ name: 'b', host: '10.0.0.2', port: 8080 }], source: 'fz' },
    { name: 'fz_tcp', mode: 'tcp', servers: [{ name: 'c', host: 'db.example', port: 3306 }], route: { port: 13306 }, source: 'fz' },
  ],
};

/** A name as messages show it (shownKey), back to the text it starts with. */
function unquote(where: string): string {
  if (!where.startsWith('"')) return where;
  try {
    return (JSON.parse(where) as string).replace(/…$/, '');
  } catch {
    return where;
  }
}

export function envFamily(name: string, arbitrary: fc.Arbitrary<EnvValue>, extra?: (config: PilotConfig) => void): Family<EnvValue> {
  return {
    name,
    arbitrary,
    mergeRenders: true,
    async run(value): Promise<Outcome> {
      const env = { ...ENV_BASE, ...value.env };
      let config: PilotConfig;
      try {
        config = load(env, { files: value.files ?? {} });
      } catch (err) {
        onlyPilotErrors(err, 'loadConfig');
        assert.ok(isPilotError(err, 'E_CONFIG'), `loadConfig threw ${String(err)}`);
        // One line per problem (a hostile name or value cannot forge a line), each naming where:
        // a variable that was set (as it is, quoted, or its family member), or a file's line.
        const errors = (err.details?.errors as string[] | undefined) ?? [err.message];
        const named = Object.keys(env);
        const files = Object.keys(value.files ?? {});
        for (const line of errors) {
          assert.ok(!/[\r\n]/.test(line), `an E_CONFIG problem spans lines: ${JSON.stringify(line)}`);
          const where = unquote(line.split(': ')[0]!);
          const ok = named.some((k) => line.includes(k) || line.includes(shownKey(k)) || k.startsWith(where) || shownKey(k).startsWith(where)) || files.some((f) => line.startsWith(f));
          assert.ok(ok, `an E_CONFIG line names no variable that was set: ${JSON.stringify(line)}`);
        }
        return { accepted: 0, skipped: 1 };
      }
      extra?.(config);
      for (const w of config.warnings ?? []) assert.ok(!/[\r\n]/.test(w), `a warning spans lines: ${JSON.stringify(w)}`);
      for (const p of config.programs) {
        assert.ok(p.command.length > 0 && p.command.every((a) => typeof a === 'string' && !a.includes('\0')), `program ${p.name}: ${JSON.stringify(p.command)}`);
      }
      let builder;
      try {
        builder = builderFor(config);
      } catch (err) {
        onlyPilotErrors(err, 'createBuilder');
        return { accepted: 0, skipped: 1 };
      }
      // HAPROXY_CONFIG runs the operator's own file: not ours to check.
      if (config.haproxy.userConfig !== undefined) return { accepted: 1, skipped: 0 };
      let r;
      try {
        r = await render(builder, [FIXED_SNAPSHOT], stringsIn(value));
      } catch (err) {
        onlyPilotErrors(err, 'build');
        throw new Error(`loadConfig accepted the settings but the build refused them: ${(err as Error).message}`);
      }
      assert.ok(r.problems.length === 0, `the render is not what the accepted settings should produce:\n${r.problems.join('\n')}\n--- render\n${r.candidate.text}`);
      const { text, files } = r.candidate;
      return { accepted: 1, skipped: 0, render: { shape: shapeOf(text, true), set: () => ({ text, files }) } };
    },
  };
}
