// `dispatch token --role ROLE [--unit ID] [--ttl 8h] [--sub NAME] [--data-dir DIR]`: mints an
// HS256 bearer token for local use and prints it on stdout.
//
// The secret is the server's: `DISPATCH_JWT_SECRET` when set, else the embedded data
// directory's `jwt-secret` file (`--data-dir`, else `$DISPATCH_DATA_DIR`, else `./.dispatch`),
// which `dispatch serve` creates at its first start. Issuer and audience are `dispatch`
// unless `DISPATCH_JWT_ISSUER` / `DISPATCH_JWT_AUDIENCE` say otherwise (as for serve).

import { resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  defaultDataDir,
  isRole,
  mintToken,
  parseDuration,
  ROLES,
  resolveJwtSecret,
} from '../../server/auth.ts';

const USAGE = `usage: dispatch token --role ROLE [--unit ID] [--ttl 8h] [--sub NAME] [--data-dir DIR]

  --role      ${ROLES.join(' | ')}
  --unit      the unit id a unit token is bound to (required for --role unit)
  --ttl       lifetime: 90s, 15m, 8h, 7d (default 8h)
  --sub       the subject (who; default the role, or unit:<id>)
  --data-dir  where serve keeps jwt-secret (default $DISPATCH_DATA_DIR or ./.dispatch)

The secret comes from DISPATCH_JWT_SECRET, else <data-dir>/jwt-secret.
`;

export async function run(argv: string[]): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        role: { type: 'string' },
        unit: { type: 'string' },
        ttl: { type: 'string', default: '8h' },
        sub: { type: 'string' },
        'data-dir': { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`dispatch token: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const role = values.role;
  if (!isRole(role)) {
    process.stderr.write(`dispatch token: --role must be one of ${ROLES.join(', ')}\n${USAGE}`);
    return 2;
  }
  const unitId = typeof values.unit === 'string' ? values.unit : undefined;
  if (role === 'unit' && !unitId) {
    process.stderr.write('dispatch token: a unit token needs --unit ID\n');
    return 2;
  }
  if (role !== 'unit' && unitId) {
    process.stderr.write('dispatch token: --unit only applies to --role unit\n');
    return 2;
  }
  let ttlS: number;
  try {
    ttlS = parseDuration(String(values.ttl));
  } catch (err) {
    process.stderr.write(`dispatch token: ${(err as Error).message}\n`);
    return 2;
  }
  const dataDir = typeof values['data-dir'] === 'string' ? resolve(values['data-dir']) : defaultDataDir();
  let secret: string;
  try {
    secret = resolveJwtSecret({ dataDir }).secret;
  } catch (err) {
    process.stderr.write(`dispatch token: ${(err as Error).message}\n`);
    return 1;
  }
  const token = await mintToken(
    { role, unitId, sub: typeof values.sub === 'string' ? values.sub : undefined, ttlS },
    secret,
    {
      issuer: process.env.DISPATCH_JWT_ISSUER || undefined,
      audience: process.env.DISPATCH_JWT_AUDIENCE || undefined,
    },
  );
  process.stdout.write(`${token}\n`);
  return 0;
}
