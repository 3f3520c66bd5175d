// The app this example ships: haproxy-pilot runs it (PROGRAM_MYSERVER) and restarts it if it dies.
import { createServer } from 'node:http';
const port = Number(process.argv[2] ?? 8081);
createServer((req, res) => res.end(`hello from myserver ${req.url}\n`)).listen(port, '127.0.0.1');
