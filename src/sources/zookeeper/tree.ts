/**
 * The children of one znode (and, with `withData`, each child's data), kept current with
 * ZooKeeper watches: a child watch on the node, a data watch on each child, and an existence
 * watch while the node does not exist. No polling. ZooKeeper watches fire once, so each event
 * re-reads (which sets the next watch). Watcher functions are stable per path so the client
 * never holds duplicates.
 *
 * The tree keeps what it last read through disconnects and expiry (the source serves the last
 * good data); `refresh()` re-reads everything, and is called on every (re)connection.
 */
import type * as ZK from 'node-zookeeper-client';
import type { ChildData } from './proxymgr-layout.js';
import { childPath } from './znode.js';
import type { ReadResult, ZkConnection } from './conn.js';

export class ChildrenTree {
  /** Undefined until the first answer. */
  exists: boolean | undefined;
  /** Why the node's children cannot be read (e.g. NO_AUTH), when they cannot. */
  error: string | undefined;
  readonly children = new Map<string, ChildData>();
  /** True once a whole read (children and, with data, every child's data) has completed. */
  loaded = false;
  active = true;
  private pending = 0;
  private readonly dataWatchers = new Map<string, (e: ZK.Event) => void>();

  constructor(
    readonly conn: ZkConnection,
    readonly path: string,
    readonly withData: boolean,
    private readonly zk: typeof ZK,
    /** Called after anything this tree holds changed. */
    private readonly changed: () => void,
  ) {}

  /** Re-read the node's children and every child's data (after a (re)connection). */
  refresh(): void {
    if (this.active) this.readChildren(true);
  }

  private readonly childWatcher = (event: ZK.Event): void => {
    if (!this.active) return;
    const t = event.getType();
    if (t === this.zk.Event.NODE_CHILDREN_CHANGED || t === this.zk.Event.NODE_DELETED || t === this.zk.Event.NODE_CREATED) this.readChildren(false);
  };

  private dataWatcher(name: string): (e: ZK.Event) => void {
    let w = this.dataWatchers.get(name);
    if (w === undefined) {
      w = (event: ZK.Event) => {
        if (!this.active || !this.children.has(name)) return;
        const t = event.getType();
        if (t === this.zk.Event.NODE_DATA_CHANGED) this.readData(name);
        else if (t === this.zk.Event.NODE_DELETED) {
          this.children.delete(name);
          this.dataWatchers.delete(name);
          this.changed();
        }
      };
      this.dataWatchers.set(name, w);
    }
    return w;
  }

  private track<T>(p: Promise<ReadResult<T>>, then: (r: ReadResult<T>) => void): void {
    this.pending++;
    void p.then((r) => {
      this.pending--;
      if (!this.active) return;
      then(r);
      if (!this.loaded && this.pending === 0 && this.exists !== undefined) {
        this.loaded = true;
        this.changed();
      }
    });
  }

  private readChildren(allData: boolean): void {
    this.track(this.conn.getChildren(this.path, this.childWatcher), (r) => {
      if (r.ok) {
        const before = this.exists === true && this.error === undefined;
        this.exists = true;
        this.error = undefined;
        let changed = !before;
        const names = new Set(r.value);
        for (const name of [...this.children.keys()]) {
          if (!names.has(name)) {
            this.children.delete(name);
            this.dataWatchers.delete(name);
            changed = true;
          }
        }
        for (const name of r.value) {
          const known = this.children.has(name);
          if (!known) {
            this.children.set(name, {});
            changed = true;
          }
          if (this.withData && (!known || allData)) this.readData(name);
        }
        if (changed) this.changed();
        return;
      }
      if (r.lost) return; // re-read on reconnection
      if (r.code === 'NO_NODE') {
        const changed = this.exists !== false || this.children.size > 0;
        this.exists = false;
        this.error = undefined;
        this.children.clear();
        this.dataWatchers.clear();
        if (changed) this.changed();
        // Wait for the node to be created; if it was created in between, read it now.
        this.track(this.conn.exists(this.path, this.childWatcher), (e) => {
          if (e.ok && e.value) this.readChildren(true);
        });
        return;
      }
      if (this.error !== r.code) {
        this.exists = true;
        this.error = r.code;
        this.changed();
      }
    });
  }

  private readData(name: string): void {
    this.track(this.conn.getData(childPath(this.path, name), this.dataWatcher(name)), (r) => {
      if (!this.children.has(name)) return;
      const before = this.children.get(name)!;
      let next: ChildData | undefined;
      if (r.ok) next = { data: r.value };
      else if (r.lost) return;
      else if (r.code === 'NO_NODE') {
        // Deleted in between: the child watch brings the new list.
        this.children.delete(name);
        this.dataWatchers.delete(name);
        this.changed();
        return;
      } else next = { error: r.code };
      if (before.data !== next.data || before.error !== next.error) {
        this.children.set(name, next);
        this.changed();
      }
    });
  }
}
