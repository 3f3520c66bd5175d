/** The master's contract: how the supervisor (src/supervise) runs HAProxy and what the applier (src/apply) may ask of it. */

/** How a supervised process ended. */
export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ReloadResult {
  ok: boolean;
  /** Worker pids after the reload (the new worker first). */
  workers: number[];
  /** Master's reload counter after the reload, where the version reports it. */
  reloads?: number;
  /** Why it failed: the master kept the old workers serving. */
  error?: string;
  durationMs: number;
}

export interface MasterStatus {
  masterPid?: number;
  /** Current workers (not the old ones still draining). */
  workers: number[];
  /** Old workers still finishing their connections. */
  oldWorkers: number[];
  reloads: number;
  lastReloadAt?: number;
  version?: string;
}

/** The HAProxy master as the rest of haproxy-pilot sees it. */
export interface HaproxyMaster {
  /** Start `haproxy -W -db -S <sock> -f <cfg>`; resolves once the master answers and a worker runs. */
  start(): Promise<void>;
  /**
   * Reload through the master and wait for confirmation (2.7+: `reload` answers Success=1|0;
   * 2.6: `show proc` shows a new worker). Calls made while one runs are coalesced into one more
   * reload after it: none is lost, none runs concurrently.
   */
  reload(reason: string): Promise<ReloadResult>;
  /** A runtime API command through the master CLI to the current worker (`@1 <cmd>`). */
  runtime(command: string): Promise<string>;
  /** Runtime API commands in order, on few connections (the worker's stats socket, else the master CLI); their answers in the same order. */
  runtimeBatch(commands: readonly string[]): Promise<string[]>;
  /** A master CLI command (`show proc`, …). */
  masterCommand(command: string): Promise<string>;
  status(): MasterStatus;
  /**
   * Stop: graceful (SIGUSR1 soft-stop, after the stop delay) or fast (SIGTERM); SIGKILL after the
   * stop timeout. Resolves with how the master ended.
   */
  stop(mode: 'graceful' | 'fast'): Promise<ExitInfo>;
  /** Relay a signal to the master (SIGTTIN/SIGTTOU). */
  signal(signal: NodeJS.Signals): void;
  /** Resolves when the master exits, whether asked to or not. */
  readonly exited: Promise<ExitInfo>;
}
