// Reads the expected results of the SNP vectors out of vectors/MANIFEST.md, so tests assert what the
// manifest states rather than values typed into the test.
import { readVectorText } from '@joinguard/core/testing';

export interface ManifestRow {
  path: string;
  expected: string;
}

/** Rows of the tables under the given heading ("## snp/", "## azure/"). */
export function manifestRows(section: string): ManifestRow[] {
  const text = readVectorText('MANIFEST.md');
  const start = text.indexOf(`\n## ${section}`);
  if (start < 0) throw new Error(`MANIFEST.md has no section ${section}`);
  const next = text.indexOf('\n## ', start + 4);
  const body = text.slice(start, next < 0 ? undefined : next);
  const rows: ManifestRow[] = [];
  for (const line of body.split('\n')) {
    if (!line.startsWith('| ') || line.startsWith('| path') || line.startsWith('|---')) continue;
    const cells = line.split(' | ').map((c) => c.replace(/^\|\s*/, '').replace(/\s*\|$/, ''));
    // [SRC …]/[CHK] say how a fact was established; the facts are what the tests read.
    rows.push({ path: cells[0]!, expected: cells[cells.length - 1]!.replace(/ ?\[(?:SRC|CHK)[^\]]*\]/g, '') });
  }
  return rows;
}

export function manifestRow(section: string, pathPrefix: string): ManifestRow {
  const row = manifestRows(section).find((r) => r.path.startsWith(pathPrefix));
  if (!row) throw new Error(`MANIFEST.md ${section} has no row for ${pathPrefix}`);
  return row;
}

/** A value stated after a key, e.g. `policy 0x30000` or `measurement b07a…` (… marks elision). */
export function stated(expected: string, key: string): string | undefined {
  const m = new RegExp(`(?:^|[\\s,(;])${key} (0x[0-9a-fA-F]+|[0-9a-fA-F]+(?:…[0-9a-fA-F]*)?)`).exec(expected);
  return m?.[1];
}

/** Matches a full hex value against a possibly elided manifest value ("abcd…ef" or "abcd…"). */
export function matchesElided(full: string, elided: string): boolean {
  const [head, tail] = elided.split('…');
  return full.startsWith(head!.toLowerCase()) && (tail === undefined || full.endsWith(tail.toLowerCase()));
}

/** SHA-256 fingerprints of the ARKs listed in the manifest, e.g. {Milan: "69:D0:63:B4:…:0B:CD"}. */
export function manifestArkFingerprints(): Record<string, string> {
  const text = readVectorText('MANIFEST.md');
  const out: Record<string, string> = {};
  for (const m of text.matchAll(/ARK-(Milan|Genoa|Turin) ([0-9A-F:]+…[0-9A-F:]+)/g)) out[m[1]!] = m[2]!;
  return out;
}
