/** A watched yaml or json file of services and servers (DISCOVERY_FILE). */
import { absPath } from '../../config/parse.js';
import type { EnvRow } from '../../config/env-table.js';
import type { Layers } from '../../config/layers.js';
import type { SourceKind } from '../kind.js';

export interface FileSourceSettings {
  path: string;
}

const row = <T>(r: EnvRow<T>): EnvRow<T> => r;

export const FILE_ENV = {
  DISCOVERY_FILE: row({ yaml: 'discovery.file', meaning: 'yaml or json file of services and servers, re-read when it changes', parse: absPath }),
} as const;

export const fileKind: SourceKind<FileSourceSettings, typeof FILE_ENV> = {
  kind: 'file',
  env: FILE_ENV,
  load: (L: Layers<typeof FILE_ENV>) => {
    const path = L.opt('DISCOVERY_FILE');
    return path === undefined ? undefined : { path };
  },
  async create(settings, deps) {
    const { createFileSource } = await import('./transport.js');
    return createFileSource(settings, deps);
  },
};
