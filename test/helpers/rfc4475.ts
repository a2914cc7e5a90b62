import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { conformanceDir } from './paths.js';

export interface TortureCase {
  file: string;
  name: string;
  section: string;
  title: string;
  category: string;
  parser: string;
  expected: string;
  sha256: string;
  data: Buffer;
}

/** Loads the RFC 4475 messages after checking every file against SHA256SUMS. */
export function loadTortureCases(): TortureCase[] {
  const sums = new Map<string, string>();
  for (const line of readFileSync(join(conformanceDir, 'SHA256SUMS'), 'utf8').split('\n')) {
    const m = /^([0-9a-f]{64})\s+\*?(\S+)$/.exec(line.trim());
    if (m) sums.set(m[2]!, m[1]!);
  }
  const list = JSON.parse(readFileSync(join(conformanceDir, 'expectations.json'), 'utf8')) as Array<Omit<TortureCase, 'data' | 'name'>>;
  return list.map((c) => {
    const data = readFileSync(join(conformanceDir, c.file));
    const digest = createHash('sha256').update(data).digest('hex');
    if (sums.get(c.file) !== digest) throw new Error(`${c.file}: SHA-256 ${digest} does not match SHA256SUMS`);
    return { ...c, name: c.file.replace(/\.dat$/, ''), data };
  });
}
