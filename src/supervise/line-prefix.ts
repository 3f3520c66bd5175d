/**
 * Pass a child's output through line by line with a prefix naming it (`[web] …`), so lines from
 * several programs interleave whole and stay attributable in the container log.
 */
import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

export interface LineSink {
  write(chunk: string): unknown;
}

/** Longer "lines" are cut so a program without newlines cannot grow our memory. */
export const MAX_LINE = 16 * 1024;

export function pipeLines(stream: Readable, prefix: string, sink: LineSink): void {
  const decoder = new StringDecoder('utf8');
  let partial = '';
  const emit = (line: string) => sink.write(`${prefix}${line}\n`);
  stream.on('data', (chunk: Buffer | string) => {
    partial += typeof chunk === 'string' ? chunk : decoder.write(chunk);
    let nl: number;
    while ((nl = partial.indexOf('\n')) >= 0) {
      emit(partial.slice(0, nl).replace(/\r$/, ''));
      partial = partial.slice(nl + 1);
    }
    while (partial.length > MAX_LINE) {
      emit(partial.slice(0, MAX_LINE));
      partial = partial.slice(MAX_LINE);
    }
  });
  stream.on('end', () => {
    partial += decoder.end();
    if (partial !== '') emit(partial);
    partial = '';
  });
  // A read error just ends the relay; the exit is handled by the supervisor.
  stream.on('error', () => {});
}
