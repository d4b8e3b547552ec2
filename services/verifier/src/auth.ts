import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { inputError } from '@joinguard/core';

export type Role = 'auditor' | 'admin';

/**
 * Credentials for the auditor and admin routes. Bearer tokens come from a file that lists each token's
 * SHA-256 (never the token itself) with its roles:
 *
 *   tokens:
 *     - name: audit-team
 *       sha256: 6b86b273ff34fce19d6b804eff5a3f5747ada4eaa22f1d49c01e52ddb7875b4b
 *       roles: [auditor]
 *
 * mTLS clients are mapped by certificate subject CN. An admin may do everything an auditor may.
 */
export interface TokenEntry {
  name: string;
  sha256: Buffer;
  roles: Role[];
}

export interface Principal {
  name: string;
  roles: Role[];
  via: 'token' | 'mtls';
}

export function loadTokens(path: string): TokenEntry[] {
  let doc: unknown;
  try {
    doc = YAML.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw inputError('AUTH_TOKENS_UNREADABLE', `token file ${path} cannot be read: ${(e as Error).message}`, { path });
  }
  const list = (doc as { tokens?: unknown } | null)?.tokens;
  if (!Array.isArray(list)) throw inputError('AUTH_TOKENS_INVALID', `token file ${path} must hold a "tokens" list`, { path });
  return list.map((t: unknown, i: number) => {
    const e = t as { name?: unknown; sha256?: unknown; roles?: unknown };
    if (typeof e.name !== 'string' || typeof e.sha256 !== 'string' || !/^[0-9a-f]{64}$/i.test(e.sha256) || !Array.isArray(e.roles)) {
      throw inputError('AUTH_TOKENS_INVALID', `token file ${path}: entry ${i} needs name, sha256 (64 hex) and roles`, { path, index: i });
    }
    const roles = e.roles.filter((r): r is Role => r === 'auditor' || r === 'admin');
    if (roles.length !== e.roles.length) throw inputError('AUTH_TOKENS_INVALID', `token file ${path}: entry ${i} has an unknown role (auditor, admin)`, { path, index: i });
    return { name: e.name, sha256: Buffer.from(e.sha256, 'hex'), roles };
  });
}

export function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

export function authenticateBearer(header: string | undefined, tokens: TokenEntry[]): Principal | undefined {
  if (!header) return undefined;
  const m = /^Bearer\s+(\S+)$/i.exec(header);
  if (!m) return undefined;
  const digest = createHash('sha256').update(m[1]!, 'utf8').digest();
  // Compare against every entry so timing does not reveal which one matched.
  let found: TokenEntry | undefined;
  for (const t of tokens) if (timingSafeEqual(t.sha256, digest)) found = t;
  return found ? { name: found.name, roles: found.roles, via: 'token' } : undefined;
}

export function authenticateMtls(subjectCn: string | undefined, authorized: boolean, mapping: Record<string, Role[]>): Principal | undefined {
  if (!authorized || !subjectCn) return undefined;
  const roles = mapping[subjectCn];
  return roles ? { name: subjectCn, roles, via: 'mtls' } : undefined;
}

export function hasRole(p: Principal | undefined, role: Role): boolean {
  if (!p) return false;
  return p.roles.includes(role) || p.roles.includes('admin');
}
