/** The embedded default's demo: a frontend on PILOT_DEMO_PORT balancing to a helper program haproxy-pilot supervises. */
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
  const script = fileURLToPath(new URL('../demo/main.js', import.meta.url));
  return { name: 'demo-backend', command: [process.execPath, script, String(demo.backendPort)], restart: 'always', startOnReload: false, origin: 'embedded default (PILOT_DEMO)' };
}
