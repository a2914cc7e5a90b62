import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type SqlStore, openStore } from '../../platform/store/index.js';
import { silentLogger } from '../../src/log/index.js';

/** A migrated SQLite store in a fresh temporary folder; `close()` closes it and deletes the folder. */
export async function openTempStore(): Promise<{ store: SqlStore; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'softswitch-store-'));
  const store = await openStore({ url: `sqlite:${join(dir, 'softswitch.db')}`, logger: silentLogger() });
  return {
    store,
    async close() {
      await store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
