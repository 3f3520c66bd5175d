/** The process limits HAProxy inherits, read once where a decision depends on them. */
import { readFileSync } from 'node:fs';

/** The RLIMIT_NOFILE hard limit HAProxy will inherit (from /proc/self/limits), or undefined when unlimited or unknown. */
export function openFilesHardLimit(files: { readFile(path: string): string } = { readFile: (p) => readFileSync(p, 'utf8') }): number | undefined {
  let text: string;
  try {
    text = files.readFile('/proc/self/limits');
  } catch {
    return undefined;
  }
  const m = /^Max open files\s+\S+\s+(\d+|unlimited)\s/m.exec(text);
  return m && m[1] !== 'unlimited' ? Number(m[1]) : undefined;
}
