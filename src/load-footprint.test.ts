/**
 * What the process loads: the command line's modules, as the running pilot imports them, must
 * not pull in the dependencies of things that are not configured (a source kind's client, the
 * healthcheck command's HTTP client, pino-pretty for JSON logs). Checked in a fresh Node process
 * through the inspector, which lists every script V8 compiled.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const CLI = new URL('./cli.js', import.meta.url).href;

function loadedPackages(): Promise<string[]> {
  const script = `
    import { Session } from 'node:inspector';
    await import(${JSON.stringify(CLI)});
    const { createLogger } = await import(${JSON.stringify(new URL('./log.js', import.meta.url).href)});
    createLogger({ level: 'silent', format: 'json' });
    const urls = [];
    const s = new Session();
    s.connect();
    s.on('Debugger.scriptParsed', (m) => urls.push(m.params.url));
    s.post('Debugger.enable', () => {
      const pkgs = new Set(urls.map((u) => /node_modules\\/((?:@[^/]+\\/)?[^/]+)\\//.exec(u)?.[1]).filter(Boolean));
      console.log(JSON.stringify([...pkgs].sort()));
      s.disconnect();
    });`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: fileURLToPath(new URL('.', import.meta.url)) }, (err, stdout) => {
      if (err) return reject(err);
      resolve(JSON.parse(stdout.trim().split('\n').pop()!) as string[]);
    });
  });
}

test('the running pilot loads no source client, HTTP client or pretty printer it was not configured for', async () => {
  const pkgs = await loadedPackages();
  for (const absent of ['etcd3', '@grpc/grpc-js', 'node-zookeeper-client', 'undici', 'pino-pretty']) {
    assert.ok(!pkgs.includes(absent), `${absent} is loaded: ${pkgs.join(', ')}`);
  }
  // What it does need is there (the check is not vacuous).
  for (const present of ['pino', 'handlebars']) assert.ok(pkgs.includes(present), `${present} is not loaded: ${pkgs.join(', ')}`);
});
