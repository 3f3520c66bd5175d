/**
 * The desired-state model: what discovery found, normalised and validated, ready for templates
 * and for the planner. Every string here has passed src/state/validate.ts: names are HAProxy
 * identifiers, hosts are IPs or DNS names, ports are 1..65535. Nothing here can carry a newline,
 * a space or a '#'.
 */
export interface DiscoveredServer {
  /** HAProxy server name, unique within the backend. */
  name: string;
  host: string;
  port: number;
  weight?: number;
  /** Administrative state; absent means ready. */
  state?: 'ready' | 'drain' | 'maint';
}

export interface DiscoveredBackend {
  /** HAProxy backend name (unique across sources: the source prefixes it when needed). */
  name: string;
  mode: 'http' | 'tcp';
  servers: DiscoveredServer[];
  /** DNS names HAProxy's resolvers resolve at run time (seed 001, ProxyMgr's dns watcher): a server-template each. */
  dns?: { name: string; port: number; slots: number }[];
  /** How traffic reaches it. Absent: the default frontend decides (seed 002: frontend :5000). */
  route?: {
    /** HTTP: Host header to match (seed 001 `domain`). */
    domain?: string;
    /** HTTP: path prefix to match (seed 001 `url_beg`). */
    pathPrefix?: string;
    /** A listen of its own on this port (seed 001 tcp-services external_port, ProxyMgr, Sidecar). */
    port?: number;
    /** The IP that listen binds to; absent: all addresses. */
    bindAddress?: string;
  };
  /**
   * Extra lines for the proxy section, already parsed against an allow-list by the source's
   * layout (ProxyMgr's listen_options): one line each, printable, rendered after `mode`.
   * Present (even empty): the source decides about balance and HTTP checks, no defaults are added.
   */
  options?: string[];
  /**
   * Extra server keywords for every server line, already allow-listed (ProxyMgr's server_options).
   * Present (even empty): the source decides about `check`, none is added.
   */
  serverOptions?: string[];
  /** Which source produced it. */
  source: string;
}

export interface SourceStatus {
  name: string;
  ok: boolean;
  /** Last successful snapshot time (ms since epoch), if any. */
  lastSuccessAt?: number;
  lastErrorAt?: number;
  lastError?: string;
  /** True when the source is failing and serving its last good snapshot. */
  stale: boolean;
  /** Failed reads since start. */
  errors?: number;
}
