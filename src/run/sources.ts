/** The discovery sources the configuration asks for, in a fixed order. */
import type { Logger } from '../log.js';
import type { PilotConfig } from '../config/types.js';
import type { Source } from '../sources/source.js';
import { createKvSource } from '../sources/kv.js';
import { createEtcdSource } from '../sources/etcd.js';
import { createFileSource } from '../sources/file.js';

export function createSources(config: PilotConfig, log: Logger): Source[] {
  const { kv, etcd, file } = config.sources;
  const sources: Source[] = [];
  if (kv) sources.push(createKvSource(kv, { log: log.child({ component: 'source', source: 'kv' }) }));
  if (etcd) sources.push(createEtcdSource(etcd, { log: log.child({ component: 'source', source: 'etcd' }) }));
  if (file) sources.push(createFileSource(file, { log: log.child({ component: 'source', source: 'file' }) }));
  return sources;
}
