// `dispatch audit verify [--data-dir DIR] [--audit-key KEY] [--anchor FILE]`: walks the audit
// chain end to end and names the first broken link. Reads DATABASE_URL, else the embedded
// PGlite data directory the engine uses (default .data/pglite). Exit code 0 when intact, 1 when
// broken, 2 on usage errors.
//
// `dispatch audit anchor [--out FILE]`: verifies the chain, then prints its head as one JSON
// line `{"seq","hash","rows","at"}` (and appends it to FILE). The chain and its head record
// (audit_head) live in the same database, so someone who can write there can cut the newest
// rows and set the head back to match: the chain alone cannot see that. Anchors kept outside
// the database (a log shipper, another host, write-once storage; run `anchor` from cron) close
// that gap: `verify --anchor FILE` also checks that every anchored row is still there with the
// anchored hash, and names the first row missing or rewritten. Rows written after the newest
// anchor are covered by the chain alone; with DISPATCH_AUDIT_KEY (HMAC) nobody without the key
// can forge or append a row that verifies.

import { appendFileSync, existsSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ChainVerdict, formatChainVerdict, openStore, type Store } from '../../store/index.ts';
import { DEFAULT_DATA_DIR } from '../data-dir.ts';

const USAGE =
  'usage: dispatch audit verify [--data-dir DIR] [--audit-key KEY] [--anchor FILE]\n' +
  '       dispatch audit anchor [--data-dir DIR] [--audit-key KEY] [--out FILE]\n';

export interface AuditAnchor {
  seq: number;
  hash: string;
  rows?: number;
  at?: string;
}

/** Reads an anchor file (one JSON object a line; blank lines ignored). Throws on a bad line. */
export function readAnchors(path: string): AuditAnchor[] {
  const out: AuditAnchor[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      const a = JSON.parse(line) as AuditAnchor;
      if (
        !Number.isSafeInteger(a.seq) ||
        a.seq < 0 ||
        typeof a.hash !== 'string' ||
        !/^[0-9a-f]{64}$/.test(a.hash)
      ) {
        throw new Error(`${path}:${i + 1}: not an audit anchor (want {"seq": N, "hash": "<64 hex>"})`);
      }
      out.push(a);
    });
  return out.sort((a, b) => a.seq - b.seq);
}

/**
 * Checks the chain against anchors taken earlier: every anchored row must still be there with
 * the anchored hash. Returns the earliest failure, or undefined.
 */
export async function checkAnchors(
  store: Store,
  verdict: ChainVerdict,
  anchors: readonly AuditAnchor[],
): Promise<Extract<ChainVerdict, { ok: false }> | undefined> {
  for (const a of anchors) {
    if (a.seq === 0) continue;
    const [row] = await store.listAudit({ afterSeq: a.seq - 1, limit: 1 });
    if (row?.seq === a.seq && row.hash === a.hash) continue;
    const when = a.at ? ` at ${a.at}` : '';
    if (row?.seq !== a.seq) {
      // The chain ends before the anchored row: its tail was cut (and the head record reset).
      const last = verdict.ok ? verdict.headSeq : verdict.brokenAt - 1;
      const first = Math.min(last + 1, a.seq);
      const missing = first === a.seq ? `${a.seq}` : `${first}..${a.seq}`;
      return {
        ok: false,
        brokenAt: first,
        reason: `row ${missing} missing: anchored${when} with head seq ${a.seq}`,
        rows: verdict.rows,
      };
    }
    return {
      ok: false,
      brokenAt: a.seq,
      reason: `row ${a.seq} does not match its anchor${when}: the chain was rewritten at or before it`,
      rows: verdict.rows,
    };
  }
  return undefined;
}

export async function run(argv: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      'data-dir': { type: 'string' },
      'audit-key': { type: 'string' },
      anchor: { type: 'string' },
      out: { type: 'string' },
    },
  });
  const command = positionals[0];
  if (
    (command !== 'verify' && command !== 'anchor') ||
    (command === 'anchor' && values.anchor) ||
    (command === 'verify' && values.out)
  ) {
    process.stderr.write(USAGE);
    return 2;
  }
  let anchors: AuditAnchor[] = [];
  if (values.anchor) {
    try {
      anchors = readAnchors(values.anchor);
    } catch (err) {
      process.stderr.write(`dispatch audit: ${(err as Error).message}\n`);
      return 2;
    }
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
    const chain = await store.verifyAudit();
    if (command === 'anchor') {
      if (!chain.ok) {
        process.stderr.write(`${formatChainVerdict(chain)}\nnot anchoring a broken chain\n`);
        return 1;
      }
      const line = `${JSON.stringify({ seq: chain.headSeq, hash: chain.headHash, rows: chain.rows, at: new Date().toISOString() })}\n`;
      if (values.out) appendFileSync(values.out, line);
      process.stdout.write(line);
      return 0;
    }
    // The first broken link: in the chain itself, or an anchored row gone or rewritten before it.
    const anchored = await checkAnchors(store, chain, anchors);
    const verdict = anchored && (chain.ok || anchored.brokenAt < chain.brokenAt) ? anchored : chain;
    const note = verdict.ok && anchors.length > 0 ? `; ${anchors.length} anchor(s) match` : '';
    (verdict.ok ? process.stdout : process.stderr).write(`${formatChainVerdict(verdict)}${note}\n`);
    return verdict.ok ? 0 : 1;
  } finally {
    await store.close();
  }
}
