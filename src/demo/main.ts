/** Entry point of the demo backend program: `node dist/src/demo/main.js <port>`. */
import { startDemoBackend } from './backend.js';

const port = Number(process.argv[2] ?? 8081);
const server = await startDemoBackend(port);
process.stdout.write(`demo backend listening on 127.0.0.1:${server.port}\n`);
for (const signal of ['SIGTERM', 'SIGINT'] as const) process.on(signal, () => void server.close().then(() => process.exit(0)));
