/**
 * Run inside a pilot's network namespace: `node fleet-probe-main.js <url> <answer> <timeoutMs>`.
 * Asks `url` on a fresh connection every ~5 ms and prints `{"seenAt": <ms since epoch>}` the
 * first time the body (trimmed) is `answer`, then exits; `{"error": …}` after the timeout.
 * Prints `{"ready":true}` first.
 */
import { request } from 'node:http';

const [url, answer, timeout] = process.argv.slice(2);
if (!url || answer === undefined) throw new Error('usage: fleet-probe-main.js <url> <answer> [timeoutMs]');
const deadline = Date.now() + Number(timeout ?? 60_000);

function ask(): Promise<string> {
  return new Promise((resolve) => {
    const req = request(url!, { agent: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve(res.statusCode === 200 ? body.trim() : `<${res.statusCode}>`));
      res.on('error', () => resolve('<error>'));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve('<error>'));
    req.end();
  });
}

process.stdout.write(`${JSON.stringify({ ready: true })}\n`);
for (;;) {
  if ((await ask()) === answer) {
    process.stdout.write(`${JSON.stringify({ seenAt: Date.now() })}\n`);
    process.exit(0);
  }
  if (Date.now() > deadline) {
    process.stdout.write(`${JSON.stringify({ error: `${url} never answered ${answer}` })}\n`);
    process.exit(1);
  }
  await new Promise((r) => setTimeout(r, 5));
}
