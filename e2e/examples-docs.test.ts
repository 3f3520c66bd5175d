/**
 * The examples are copied by people: one that turns certificate verification off must say so in
 * its README, next to the variable that does it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const EXAMPLES = fileURLToPath(new URL('../../examples/', import.meta.url));

/** Settings that turn verification off: *_SSL_VERIFY=off|0|false, `verify none`, insecure flags. */
const INSECURE = /\b([A-Z][A-Z0-9_]*(?:SSL_VERIFY|TLS_VERIFY|VERIFY))=(?:off|0|false|no)\b|\bverify none\b|--insecure\b|\bINSECURE[A-Z_]*=(?:on|1|true|yes)\b/g;

test('an example that turns certificate verification off says so in its README, next to the variable', () => {
  for (const name of readdirSync(EXAMPLES)) {
    const dir = join(EXAMPLES, name);
    const files = readdirSync(dir).filter((f) => f !== 'README.md');
    const readme = existsSync(join(dir, 'README.md')) ? readFileSync(join(dir, 'README.md'), 'utf8') : '';
    for (const f of files) {
      const text = readFileSync(join(dir, f), 'utf8');
      for (const m of text.matchAll(INSECURE)) {
        const variable = m[1] ?? m[0];
        const paragraph = readme.split(/\n\s*\n/).find((p) => p.includes(variable));
        assert.ok(paragraph, `examples/${name}/README.md does not mention ${variable} (set in ${f})`);
        assert.match(paragraph, /certificate/i, `examples/${name}/README.md: the paragraph naming ${variable} must say that certificates are not verified`);
        assert.match(paragraph, /not verif|no verification|verification off|unverified/i, `examples/${name}/README.md: say plainly that ${variable} turns verification off`);
      }
    }
  }
});
