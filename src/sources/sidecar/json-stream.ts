/**
 * Counts the JSON documents in Sidecar's `/api/watch` stream. Sidecar writes each document with
 * json.Marshal and flushes, with nothing between two documents (`{…}{…}`), and a document may
 * arrive split across chunks. We only need to know that one ended (it means "the state changed";
 * the state itself is read from /api/state.json, as haproxy-api does), so this scanner keeps a
 * nesting depth and string state and nothing else: constant memory whatever the stream sends.
 */
export interface JsonDocumentCounter {
  /** Feeds bytes; returns how many top-level documents they completed. Throws on bytes that cannot start a document. */
  feed(chunk: Uint8Array): number;
}

const SPACE = new Set([0x20, 0x09, 0x0a, 0x0d]);

export function jsonDocumentCounter(): JsonDocumentCounter {
  let depth = 0;
  let inString = false;
  let escaped = false;
  return {
    feed(chunk) {
      let done = 0;
      for (const c of chunk) {
        if (inString) {
          if (escaped) escaped = false;
          else if (c === 0x5c) escaped = true; // backslash
          else if (c === 0x22) inString = false;
          continue;
        }
        if (c === 0x22) {
          if (depth === 0) throw new Error('the watch stream sent a value that is not an object');
          inString = true;
        } else if (c === 0x7b || c === 0x5b) {
          depth++;
        } else if (c === 0x7d || c === 0x5d) {
          if (depth === 0) throw new Error('the watch stream sent an unbalanced "}" or "]"');
          depth--;
          if (depth === 0) done++;
        } else if (depth === 0 && !SPACE.has(c)) {
          throw new Error('the watch stream sent a value that is not an object');
        }
      }
      return done;
    },
  };
}
