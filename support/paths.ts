import { fileURLToPath } from 'node:url';
import { dirname, resolve } from 'node:path';

/** The repository root, whether this runs from support/ (sources) or dist/support/ (compiled). */
const here = dirname(fileURLToPath(import.meta.url));
export const repoRoot = resolve(here, here.includes(`${'/dist/'}`) ? '../..' : '..');
