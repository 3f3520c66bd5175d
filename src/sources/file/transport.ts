/**
 * The discovery file (DISCOVERY_FILE): yaml or json of services and servers (schema in
 * src/state/file-layout.ts). Watched with fs.watch on the *directory*, because editors and
 * config-management tools replace a file by renaming a new one over it (a watch on the file
 * itself would keep watching the old, unlinked inode), and by a slow poll as a fallback for
 * file systems where inotify says nothing (network mounts, some bind mounts). A parse error is a
 * source error naming file:line:column; the last good snapshot stands.
 */
import { watch as fsWatch, type FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { LineCounter, isMap, isScalar, parseDocument } from 'yaml';
import type { Logger } from '../../log.js';
import { PilotError } from '../../errors.js';
import type { FileSourceSettings } from './kind.js';
import { fileLayout, flattenKeys } from './layout.js';
import type { DiscoveredServer } from '../../state/model.js';
import type { Source, SourceSink } from '../source.js';
import { snapshotOf, systemClock, type SourceClock } from '../common.js';

export interface FileSourceDeps {
  log: Logger;
  clock?: SourceClock;
  name?: string;
  /** Slow poll (default 10 s). */
  pollMs?: number;
  /**
   * Quiet time after a change event before reading (default 20 ms): an editor's or a tool's
   * writes in a burst give one read. A file renamed over the one read (config management
   * tools do that) is whole: it is read at once, never half-written.
   */
  debounceMs?: number;
}

interface Parsed {
  doc: unknown;
  locate: (path: readonly (string | number)[]) => string;
}

/** Parses yaml (or json: a .json file goes through JSON.parse) and names file:line:col on errors. */
export function parseDiscoveryFile(path: string, text: string): Parsed {
  if (path.endsWith('.json')) {
    try {
      return { doc: JSON.parse(text) as unknown, locate: () => path };
    } catch (err) {
      const message = (err as Error).message;
      // Node 20 says "at position N"; Node 22+ says "(line L column C)".
      const lc = /line (\d+) column (\d+)/.exec(message);
      const pos = /position (\d+)/.exec(message);
      let where = '';
      if (lc) where = `:${lc[1]}:${lc[2]}`;
      else if (pos) {
        const before = text.slice(0, Number(pos[1]));
        const line = before.split('\n').length;
        where = `:${line}:${before.length - before.lastIndexOf('\n')}`;
      }
      throw new Error(`${path}${where}: ${message.split('\n')[0]}`);
    }
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, uniqueKeys: true, prettyErrors: true });
  const first = doc.errors[0];
  if (first !== undefined) {
    const lp = first.linePos?.[0];
    throw new Error(`${path}${lp ? `:${lp.line}:${lp.col}` : ''}: ${first.message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '')}`);
  }
  return {
    doc: doc.toJS() as unknown,
    locate: (p) => {
      // Point at the key of the entry (where a reader looks), else at the node itself.
      const parent = p.length > 0 ? doc.getIn(p.slice(0, -1), true) : undefined;
      const pair = isMap(parent) ? parent.items.find((it) => isScalar(it.key) && it.key.value === p[p.length - 1]) : undefined;
      const node = (isScalar(pair?.key) ? pair.key : doc.getIn(p, true)) as { range?: [number, number, number] } | undefined;
      const start = node?.range?.[0];
      return start === undefined ? path : `${path}:${lineCounter.linePos(start).line}`;
    },
  };
}

export function createFileSource(settings: FileSourceSettings, deps: FileSourceDeps): Source {
  const name = deps.name ?? 'file';
  const clock = deps.clock ?? systemClock;
  const log = deps.log.child({ component: `source-${name}` });
  const path = resolve(settings.path);
  const pollMs = deps.pollMs ?? 10_000;
  const debounceMs = deps.debounceMs ?? 20;

  let sink: SourceSink | undefined;
  let watcher: FSWatcher | undefined;
  let pollTimer: NodeJS.Timeout | undefined;
  let debounceTimer: NodeJS.Timeout | undefined;
  let lastText: string | undefined;
  let lastError: string | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let stopped = false;

  const fail = (message: string, cause?: unknown): void => {
    // Report each distinct failure once: the poll would otherwise repeat it every pollMs.
    if (message === lastError) return;
    lastError = message;
    sink?.error(new PilotError('E_SOURCE', `${name}: ${message}`, { ...(cause === undefined ? {} : { cause }), details: { source: name, file: path } }));
  };

  let serverMemo: ReadonlyMap<string, DiscoveredServer> = new Map();

  async function readOnce(eager: boolean): Promise<void> {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // The rename was the file going away (or an unlink before a re-create): judge after quiet.
      if (eager && code === 'ENOENT') {
        clearTimeout(debounceTimer);
        debounceTimer = setTimeout(read, debounceMs);
        return;
      }
      lastText = undefined;
      fail(code === 'ENOENT' ? `${path}: not found` : `${path}: cannot be read (${code ?? (err as Error).message})`, err);
      return;
    }
    if (stopped || (text === lastText && lastError === undefined)) return;
    lastText = text;
    try {
      const { doc, locate } = parseDiscoveryFile(path, text);
      const memo = { previous: serverMemo, next: new Map<string, DiscoveredServer>() };
      const result = fileLayout(doc, { source: name, locate, memo });
      serverMemo = memo.next;
      const snapshot = snapshotOf(name, clock.now(), flattenKeys(doc), result, log);
      lastError = undefined;
      sink?.snapshot(snapshot);
    } catch (err) {
      fail((err as Error).message, err);
    }
  }

  /** `eager`: asked for by a rename over the file (a missing file then waits for quiet). */
  function read(eager = false): void {
    if (stopped) return;
    if (reading !== undefined) {
      again = true;
      return;
    }
    reading = readOnce(eager).finally(() => {
      reading = undefined;
      if (again) {
        again = false;
        read();
      }
    });
  }

  function ensureWatch(): void {
    if (watcher !== undefined || stopped) return;
    try {
      watcher = fsWatch(dirname(path), { persistent: false }, (event, filename) => {
        if (filename !== null && filename !== basename(path)) return;
        clearTimeout(debounceTimer);
        // A file renamed over the one we read (editors, config tools, kubelet's symlink swap) is
        // whole: read it now. An in-place write may come in pieces, and a file created anew is
        // written after it appears: those wait for quiet.
        if (event === 'rename' && filename !== null && lastText !== undefined) read(true);
        else debounceTimer = setTimeout(read, debounceMs);
      });
      watcher.on('error', (err) => {
        log.warn({ err: err.message }, `${name}: watching ${dirname(path)} failed; polling every ${pollMs} ms`);
        watcher?.close();
        watcher = undefined;
      });
    } catch (err) {
      log.warn({ err: (err as Error).message }, `${name}: cannot watch ${dirname(path)}; polling every ${pollMs} ms`);
    }
  }

  return {
    name,
    start(s: SourceSink): void {
      if (sink !== undefined) throw new PilotError('E_INTERNAL', `${name}: source started twice`);
      sink = s;
      log.info({ file: path }, `${name}: watching ${path}`);
      ensureWatch();
      pollTimer = setInterval(() => {
        ensureWatch(); // the directory may exist now
        read();
      }, pollMs);
      read();
    },
    async stop(): Promise<void> {
      stopped = true;
      clearInterval(pollTimer);
      clearTimeout(debounceTimer);
      watcher?.close();
      watcher = undefined;
      await reading;
    },
  };
}
