/**
 * A client that polls one URL until it is told to stop, and then prints what it saw as one JSON
 * line: `{"ok":N,"failed":N,"errors":[…up to 20 samples]}`. Run inside the test's network
 * namespace (ip netns exec …), where the frontend listens. Every request opens a new connection
 * (no keep-alive), so a listener that is missing for a moment during a reload shows up as a
 * failure. A failure is a connection error, a timeout or any status but 200.
 *
 *   node render-poller.js URL      stop with SIGTERM or by closing stdin
 */
import { request } from 'node:http';

const url = process.argv[2];
if (!url) {
  process.stderr.write('usage: render-poller URL\n');
  process.exit(64);
}

let ok = 0;
let failed = 0;
const errors: string[] = [];
let stopping = false;

function once(): Promise<void> {
  return new Promise((resolve) => {
    const req = request(url!, { agent: false, timeout: 5000, headers: { connection: 'close' } }, (res) => {
      res.resume();
      res.on('end', () => {
        if (res.statusCode === 200) ok++;
        else note(`status ${res.statusCode}`);
        resolve();
      });
      res.on('error', (err) => {
        note(err.message);
        resolve();
      });
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => {
      note(err.message);
      resolve();
    });
    req.end();
  });
}

function note(what: string): void {
  failed++;
  if (errors.length < 20) errors.push(`${new Date().toISOString()} ${what}`);
}

const done = (async () => {
  while (!stopping) await once();
})();

const finish = async () => {
  if (stopping) return;
  stopping = true;
  await done;
  process.stdout.write(`${JSON.stringify({ ok, failed, errors })}\n`);
  process.exit(0);
};
process.on('SIGTERM', () => void finish());
process.stdin.on('end', () => void finish());
process.stdin.resume();
