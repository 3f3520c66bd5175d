/** The embedded default's demo: a frontend on PILOT_DEMO_PORT balancing to a helper program haproxy-pilot supervises. */
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import type { ProgramSpec } from '../config/types.js';

export interface DemoPorts {
  port: number;
  backendPort: number;
}

/** The backend listens on loopback, on the port after the frontend's. */
export function demoPorts(demo: { port: number } | undefined): DemoPorts | undefined {
  if (!demo) return undefined;
  return { port: demo.port, backendPort: demo.port < 65535 ? demo.port + 1 : demo.port - 1 };
}

export function demoProgram(demo: DemoPorts): ProgramSpec {
  const script = fileURLToPath(new URL('./main.js', import.meta.url));
  return { name: 'demo-backend', command: [process.execPath, script, String(demo.backendPort)], restart: 'always', startOnReload: false, origin: 'embedded default (PILOT_DEMO)' };
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or after timeoutMs. */
export async function waitForPort(port: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect({ host: '127.0.0.1', port }, () => {
        socket.destroy();
        resolve(true);
      });
      socket.on('error', () => resolve(false));
    });
    if (open) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}
