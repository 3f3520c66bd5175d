import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { sourceEnvRows } from '../sources/registry.js';
import { ENV_TABLE, PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY, renderEnvTableMarkdown, type EnvRow } from './env-table.js';

// dist/src/config/*.js → the repository root
const README = new URL('../../../README.md', import.meta.url);

test('README.md variable table matches the env table in code', () => {
  const text = readFileSync(README, 'utf8');
  const m = /<!-- env-table:start -->\n([\s\S]*?)\n?<!-- env-table:end -->/.exec(text);
  assert.ok(m, 'README.md has the env-table markers');
  assert.equal(m[1]!.trim(), renderEnvTableMarkdown(sourceEnvRows()).trim(), 'regenerate the README block with renderEnvTableMarkdown(sourceEnvRows())');
});

test('every default in the table parses with its own parser', () => {
  for (const [name, row] of Object.entries({ ...ENV_TABLE, ...sourceEnvRows() }) as [string, EnvRow<unknown>][]) {
    if (row.default !== undefined) assert.doesNotThrow(() => row.parse(row.default!, name), name);
  }
  for (const fam of [PROGRAM_FAMILY, RESOLVER_FAMILY, SERVICE_FAMILY]) {
    for (const [opt, row] of Object.entries(fam.options) as [string, EnvRow<unknown>][]) {
      if (row.default !== undefined) assert.doesNotThrow(() => row.parse(row.default!, opt), `${fam.prefix}${opt}`);
    }
  }
});

test('the table lists every variable the seeds and the brief name', () => {
  const md = renderEnvTableMarkdown(sourceEnvRows());
  for (const v of ['KV_IP', 'KV_PORT', 'OCCS_API_TOKEN', 'OCCS_BACKEND_KEY', 'ETCD_NODE', 'HAPROXY-ID', 'STATS_PASSWORD_FILE', 'KV_TOKEN_FILE', 'ETCD_PASSWORD_FILE', 'PROGRAM_<NAME>_RESTART', 'RESOLVER_<NAME>_HOLD_VALID', 'SERVICE_<NAME>_HOST_HEADER']) {
    assert.ok(md.includes(`\`${v}\``), v);
  }
});
