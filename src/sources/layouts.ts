/**
 * Key layouts a key/value transport can pair with: `containers` (seed 002: every value under the
 * prefix is a `host:port` server of one backend) and `confd` (seed 001: `services/<name>/…` and
 * `tcp-services/<name>/…`). The etcd and key/value kinds choose one with ETCD_LAYOUT / KV_LAYOUT.
 */
import type { Layout } from '../state/layout.js';
import { kvLayout } from '../state/kv-layout.js';
import { confdLayout } from '../state/confd-layout.js';
import { oneOf } from '../config/parse.js';

export type LayoutName = 'containers' | 'confd';

export const parseLayoutName = oneOf<LayoutName>('containers', 'confd');

export function layoutFor(name: LayoutName, prefix: string, source: string): Layout {
  return name === 'confd' ? (keys) => confdLayout(keys, { prefix, source }) : (keys) => kvLayout(keys, { prefix, source });
}
