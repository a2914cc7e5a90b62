import { join } from 'node:path';
import { repoRoot } from '../../support/paths.js';

export { repoRoot };
/** shared/ sits beside the checkout (CI clones main with shared/ next to it). */
/** The RFC 4475 torture messages, vendored with their SHA256SUMS and expectations (test/fixtures/rfc4475/README.md). */
export const conformanceDir = process.env.RFC4475_DIR ?? join(repoRoot, 'test', 'fixtures', 'rfc4475');
