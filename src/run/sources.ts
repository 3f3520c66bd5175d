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
  if (kv) sources.push(createKvSource(kv, { log }));
  if (etcd) sources.push(createEtcdSource(etcd, { log }));
  if (file) sources.push(createFileSource(file, { log }));
  return sources;
}
