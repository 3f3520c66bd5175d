import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig } from '../config/load.js';
import { loadTemplates, originOf, renderConfig, renderConfigMapped } from './render.js';
import { markOutput, templateLineFor, unmarkAndTidy } from './source-map.js';

test('unmarkAndTidy: the text is what it was without markers; each line knows its template', () => {
  const inner = markOutput(1, 'a  \n\n\n  b\n');
  const marked = markOutput(0, `top\n${inner}after\n\n`);
  const { text, origins } = unmarkAndTidy(marked);
  assert.equal(text, 'top\na\n\n  b\nafter\n');
  assert.deepEqual(origins, [0, 1, 1, 1, 0]);
});

test('templateLineFor: the template line whose static text matches best', () => {
  const src = 'defaults\n    mode {{defaults.mode}}\n    timeout connect {{defaults.timeoutConnect}}\n{{#each x}}\n    {{this}}\n{{/each}}\n';
  assert.equal(templateLineFor(src, '    timeout connect 5s'), 3);
  assert.equal(templateLineFor(src, '    mode http'), 2);
  assert.equal(templateLineFor(src, '    anything else'), 5);
  assert.equal(templateLineFor(src, 'nothing'), 5);
});

test('a rendered line maps back to the partial and line that wrote it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pilot-srcmap-'));
  try {
    mkdirSync(join(dir, 'partials'));
    writeFileSync(join(dir, 'partials', 'defaults.hbs'), 'defaults\n    mode http\n    timeout connect 5s\n    this_is_not_a_directive on\n');
    const config = loadConfig({ env: { STATS_PASSWORD: 'pw', PILOT_TEMPLATES: dir }, readFile: () => '', fileExists: () => false });
    const templates = loadTemplates(dir);
    const input = { config, backends: [], keys: {}, hasPrometheus: false, demo: { port: 8080, backendPort: 8081 } };
    const rendered = renderConfigMapped(templates, input);
    assert.equal(rendered.text, renderConfig(templates, input));
    assert.doesNotMatch(rendered.text, /[\u0001-\u0003]/);
    const line = rendered.text.split('\n').findIndex((l) => l.includes('this_is_not_a_directive')) + 1;
    assert.deepEqual(originOf(templates, rendered, line), { file: join(dir, 'partials', 'defaults.hbs'), line: 4 });
    const global = rendered.text.split('\n').findIndex((l) => l.startsWith('    maxconn')) + 1;
    assert.equal(originOf(templates, rendered, global)?.file, templates.files.partials['global']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
