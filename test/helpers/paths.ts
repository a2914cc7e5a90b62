import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

/** The repository root, whether this runs from test/ (sources) or dist/test/ (compiled). */
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, here.includes(`${'/dist/'}`) ? '../../..' : '../..');
/** shared/ sits beside the checkout (CI clones main with shared/ next to it). */
/** The RFC 4475 torture messages, vendored with their SHA256SUMS and expectations (test/fixtures/rfc4475/README.md). */
export const conformanceDir = process.env.RFC4475_DIR ?? join(repoRoot, 'test', 'fixtures', 'rfc4475');
