/**
 * The `file` watcher's file, kept current with fs.watch on its directory (so an editor's or a
 * deploy tool's write-and-rename is seen too). The path comes from ZooKeeper, so it is read
 * carefully: opened non-blocking (a FIFO cannot hang us), only a regular file, at most
 * MAX_FILE_BYTES + 1 bytes read (a device or a huge file cannot fill memory).
 * If the directory does not exist the error stays until the service's blob changes.
 */
import { watch, constants, type FSWatcher } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { MAX_FILE_BYTES } from './proxymgr-layout.js';

export class FileWatch {
  content: string | undefined;
  error: string | undefined;
  loaded = false;
  pending = 0;
  private watcher: FSWatcher | undefined;
  private active = true;
  private again = false;

  constructor(
    readonly file: string,
    private readonly changed: () => void,
  ) {}

  start(): void {
    const name = basename(this.file);
    try {
      this.watcher = watch(dirname(this.file), { persistent: false }, (_event, filename) => {
        if (filename === null || filename === name) this.read();
      });
      this.watcher.on('error', () => undefined);
    } catch (err) {
      this.error = (err as NodeJS.ErrnoException).code ?? 'cannot be watched';
    }
    this.read();
  }

  stop(): void {
    this.active = false;
    this.watcher?.close();
  }

  private read(): void {
    if (!this.active) return;
    // One read at a time; an event during a read asks for one more.
    if (this.pending > 0) {
      this.again = true;
      return;
    }
    this.pending++;
    void readBounded(this.file).then((r) => {
      this.pending--;
      if (!this.active) return;
      const changed = !this.loaded || r.content !== this.content || r.error !== this.error;
      this.content = r.content;
      this.error = r.error;
      this.loaded = true;
      if (this.again) {
        this.again = false;
        this.read();
      }
      if (changed) this.changed();
    });
  }
}

async function readBounded(file: string): Promise<{ content?: string; error?: string }> {
  let fh;
  try {
    fh = await open(file, constants.O_RDONLY | constants.O_NONBLOCK);
    const st = await fh.stat();
    if (!st.isFile()) return { error: 'not a regular file' };
    const buf = Buffer.alloc(MAX_FILE_BYTES + 1);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, size, buf.length - size, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size >= buf.length) return { error: `larger than ${MAX_FILE_BYTES} bytes` };
    }
    return { content: buf.subarray(0, size).toString('utf8') };
  } catch (err) {
    return { error: (err as NodeJS.ErrnoException).code ?? 'cannot be read' };
  } finally {
    await fh?.close().catch(() => undefined);
  }
}
