// `dispatch audit verify [--data-dir DIR]`: walks the audit chain end to end and names the
// first broken link. Reads DATABASE_URL, else the embedded PGlite data directory the engine
// uses (default .data/pglite). Exit code 0 when intact, 1 when broken, 2 on usage errors.

import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatChainVerdict, openStore } from '../../store/index.ts';
import { DEFAULT_DATA_DIR } from '../data-dir.ts';

export async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: { 'data-dir': { type: 'string' }, 'audit-key': { type: 'string' } },
  });
  if (positionals[0] !== 'verify') {
    process.stderr.write('usage: dispatch audit verify [--data-dir DIR] [--audit-key KEY]\n');
    return 2;
  }
  const databaseUrl = process.env.DATABASE_URL;
  const dataDir = values['data-dir'] ?? `${DEFAULT_DATA_DIR}/pglite`;
  if (!databaseUrl && !existsSync(dataDir)) {
    process.stderr.write(`dispatch audit: no DATABASE_URL and no embedded data at ${dataDir}\n`);
    return 2;
  }
  const store = await openStore({
    databaseUrl,
    dataDir,
    auditKey: values['audit-key'] ?? process.env.DISPATCH_AUDIT_KEY,
  });
  try {
    const verdict = await store.verifyAudit();
    (verdict.ok ? process.stdout : process.stderr).write(`${formatChainVerdict(verdict)}\n`);
    return verdict.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}
