/**
 * Atomic file replacement: HAProxy (re)reads its config at any reload, and a crash mid-write
 * must never leave it a half-written file. The data goes to a temporary file in the *same*
 * directory (rename(2) is only atomic within one filesystem), is fsynced, renamed over the
 * target, and the directory is fsynced so the rename itself survives a power cut.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface WriteOptions {
  /** File mode of a new file (default 0o644: HAProxy may run as another user and must read it). */
  mode?: number;
  /** fsync the directory after the rename (default). Off when the caller syncs the folder once for many files. */
  fsyncDir?: boolean;
}

/** Writes `path` atomically; the injection point of the applier. */
export type FileWriter = (path: string, data: string, options?: WriteOptions) => Promise<void>;

export const writeAtomic: FileWriter = async (path, data, options = {}) => {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  const handle = await open(tmp, 'wx', options.mode ?? 0o644);
  try {
    try {
      await handle.writeFile(data, 'utf8');
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  if (options.fsyncDir !== false) await fsyncDir(dir);
};

export async function fsyncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems (and some container overlay setups) refuse fsync on a directory: the
    // rename is still atomic, only its durability across a power cut is weaker.
    if ((err as NodeJS.ErrnoException).code !== 'EINVAL' && (err as NodeJS.ErrnoException).code !== 'EISDIR') throw err;
  } finally {
    await handle.close();
  }
}
