/**
 * PILOT_RUN_DIR is the one place haproxy-pilot writes (configs, certificates, the master socket),
 * and in a locked-down container (`--read-only`) it is a tmpfs. A tmpfs mounted there belongs to
 * root unless told otherwise, and the pilot runs as the haproxy user: say so at start, with the
 * fix, instead of failing on the first write with a stack trace.
 */
import { constants } from 'node:fs';
import { access, mkdir, stat } from 'node:fs/promises';
import { PilotError } from '../errors.js';

export async function ensureRunDir(runDir: string): Promise<void> {
  try {
    await mkdir(runDir, { recursive: true, mode: 0o750 });
    await access(runDir, constants.W_OK | constants.X_OK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    const st = await stat(runDir).catch(() => undefined);
    const uid = process.geteuid?.();
    const what = st ? ` (owner uid ${st.uid}, mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})` : '';
    const fix =
      code === 'EROFS'
        ? 'the file system is read-only: mount a tmpfs there (podman run --read-only mounts one on /run by itself)'
        : `a tmpfs mounted there must belong to the container user: podman run --tmpfs ${runDir}:U, docker run --tmpfs ${runDir}:uid=${uid ?? 99},gid=${process.getegid?.() ?? 99}; or set PILOT_RUN_DIR to a directory uid ${uid ?? '?'} may write`;
    throw new PilotError('E_CONFIG', `PILOT_RUN_DIR: haproxy-pilot (uid ${uid ?? '?'}) cannot write to ${runDir}${what}: ${code}; ${fix}`, { cause: err });
  }
}
