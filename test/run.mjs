// The README's test command: type-check, lint, then every vitest tier (unit, contract,
// integration, golden, browser). Integration tiers need PostgreSQL and Redis on localhost
// (or DATABASE_URL / REDIS_URL) and fail loudly without them. Ends with "N passed, N failed".
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync } from 'node:fs';

const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', env: process.env }).status ?? 1;
let failedChecks = 0;
let passedChecks = 0;
for (const [name, cmd, args] of [
  ['typecheck', 'npx', ['tsc', '--noEmit']],
  ['lint', 'npx', ['biome', 'check', '.']],
]) {
  const code = run(cmd, args);
  console.log(`${name}: ${code === 0 ? 'ok' : 'FAILED'}`);
  if (code === 0) passedChecks++;
  else failedChecks++;
}

mkdirSync('test-artifacts', { recursive: true });
const report = 'test-artifacts/vitest.json';
const extra = process.argv.slice(2);
const code = run('npx', [
  'vitest',
  'run',
  '--reporter=default',
  '--reporter=json',
  `--outputFile.json=${report}`,
  ...extra,
]);
let passed = 0;
let failed = 0;
try {
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + (r.numRuntimeErrorTestSuites ?? 0);
  // A file that failed to load has no tests but must count as a failure.
  for (const f of r.testResults ?? [])
    if (f.status === 'failed' && (f.assertionResults ?? []).length === 0) failed++;
} catch {
  failed++;
}
if (code !== 0 && failed === 0) failed = 1;
console.log(`${passed + passedChecks} passed, ${failed + failedChecks} failed`);
process.exit(failed + failedChecks > 0 ? 1 : 0);
