/**
 * Lift `program` sections out of an operator's haproxy.cfg so haproxy-pilot supervises those
 * programs itself: HAProxy does not restart a crashed program, deprecates `program` in 3.1
 * (fatal without `expose-deprecated-directives`) and removes it in 3.3.
 *
 * Lifted lines are commented out rather than deleted, so HAProxy's `file:line` messages still
 * point at the operator's own line numbers.
 */
import type { ProgramSpec } from '../config/types.js';
import { PilotError } from '../errors.js';
import { SECTION_KEYWORDS, splitConfigWords } from '../haproxy/config-words.js';


export interface LiftResult {
  /** The config with program sections commented out (same number of lines). */
  config: string;
  programs: ProgramSpec[];
  /** Keywords in program sections that haproxy-pilot does not carry over. */
  warnings: string[];
}

export const LIFTED_PREFIX = '# [haproxy-pilot: program lifted] ';

interface OpenProgram {
  name: string;
  line: number;
  command?: string[];
  user?: string;
  group?: string;
  startOnReload: boolean;
}

/**
 * Remove `program` sections from `cfgText` and return them as ProgramSpecs (restart policy
 * on-failure). `origin` names the file in messages (`origin:line`).
 *
 * `start-on-reload` defaults to true: measured on 2.6.12, a program without the option gets a
 * new instance on every reload (the old one receives SIGUSR1), as HAProxy's documentation says.
 */
export function liftProgramSections(
  cfgText: string,
  origin: string,
  env?: Readonly<Record<string, string | undefined>>,
): LiftResult {
  const lines = cfgText.split('\n');
  const programs: ProgramSpec[] = [];
  const warnings: string[] = [];
  let current: OpenProgram | undefined;
  // Line indexes of the open program section, kept until we know where it ends.
  let pendingLines: number[] = [];

  const close = () => {
    if (!current) return;
    // Trailing comments/blank lines belong visually to the next section: leave them.
    while (pendingLines.length > 0) {
      const last = pendingLines[pendingLines.length - 1]!;
      if (splitConfigWords(lines[last]!).length === 0 && last !== current.line - 1) pendingLines.pop();
      else break;
    }
    for (const idx of pendingLines) lines[idx] = LIFTED_PREFIX + lines[idx]!;
    if (!current.command || current.command.length === 0) {
      throw new PilotError('E_CONFIG', `${origin}:${current.line}: program ${current.name} has no command`);
    }
    const name = current.name.toLowerCase();
    if (programs.some((p) => p.name === name)) {
      throw new PilotError('E_CONFIG', `${origin}:${current.line}: program ${current.name} is declared twice`);
    }
    programs.push({
      name,
      command: current.command,
      restart: 'on-failure',
      ...(current.user !== undefined ? { user: current.user } : {}),
      ...(current.group !== undefined ? { group: current.group } : {}),
      startOnReload: current.startOnReload,
      origin: `${origin}:${current.line}`,
    });
    current = undefined;
    pendingLines = [];
  };

  for (let i = 0; i < lines.length; i++) {
    const words = splitConfigWords(lines[i]!, env);
    const first = words[0];
    if (first !== undefined && SECTION_KEYWORDS.has(first)) {
      close();
      if (first === 'program') {
        const name = words[1];
        if (name === undefined || name === '') {
          throw new PilotError('E_CONFIG', `${origin}:${i + 1}: program section without a name`);
        }
        current = { name, line: i + 1, startOnReload: true };
        pendingLines = [i];
      }
      continue;
    }
    if (!current) continue;
    pendingLines.push(i);
    if (first === undefined) continue;
    const where = `${origin}:${i + 1}`;
    if (first === 'command') {
      current.command = words.slice(1);
    } else if (first === 'user' || first === 'group') {
      const value = words[1];
      if (value === undefined) throw new PilotError('E_CONFIG', `${where}: "${first}" needs a value`);
      current[first] = value;
    } else if (first === 'option' && words[1] === 'start-on-reload') {
      current.startOnReload = true;
    } else if (first === 'no' && words[1] === 'option' && words[2] === 'start-on-reload') {
      current.startOnReload = false;
    } else if (first.startsWith('.')) {
      // Conditional blocks (.if/.endif) inside a program section: not evaluated here.
      warnings.push(`${where}: "${first}" inside program ${current.name} is not evaluated`);
    } else {
      warnings.push(`${where}: "${words.join(' ')}" in program ${current.name} is not supported by haproxy-pilot and was dropped`);
    }
  }
  close();
  return { config: lines.join('\n'), programs, warnings };
}
