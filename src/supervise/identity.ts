/**
 * user/group names → uid/gid from /etc/passwd and /etc/group (no NSS: a container image has
 * only these files, and Node has no getpwnam).
 */
import { readFileSync } from 'node:fs';
import { PilotError } from '../errors.js';

export interface Identity {
  uid?: number;
  gid?: number;
}

export interface IdentityFiles {
  passwd: string;
  group: string;
}

export function readIdentityFiles(passwdPath = '/etc/passwd', groupPath = '/etc/group'): IdentityFiles {
  const read = (p: string) => {
    try {
      return readFileSync(p, 'utf8');
    } catch {
      return '';
    }
  };
  return { passwd: read(passwdPath), group: read(groupPath) };
}

function entries(text: string): string[][] {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => l.split(':'));
}

const isId = (s: string) => /^\d+$/.test(s);

/**
 * Resolve `user`/`group` (names or numeric ids). With a user and no group, the user's primary
 * group is used (otherwise the child would keep root's gid).
 */
export function resolveIdentity(user: string | undefined, group: string | undefined, files: IdentityFiles, what: string): Identity {
  const out: Identity = {};
  if (user !== undefined) {
    const row = entries(files.passwd).find((f) => f[0] === user) ?? (isId(user) ? entries(files.passwd).find((f) => f[2] === user) : undefined);
    if (row) {
      out.uid = Number(row[2]);
      out.gid = Number(row[3]);
    } else if (isId(user)) {
      out.uid = Number(user);
    } else {
      throw new PilotError('E_PROGRAM', `${what}: user "${user}" not found in /etc/passwd`);
    }
  }
  if (group !== undefined) {
    const row = entries(files.group).find((f) => f[0] === group);
    if (row) out.gid = Number(row[2]);
    else if (isId(group)) out.gid = Number(group);
    else throw new PilotError('E_PROGRAM', `${what}: group "${group}" not found in /etc/group`);
  }
  return out;
}
