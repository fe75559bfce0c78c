// `dispatch import-calls CSV --mapping FILE --base SCENARIO.json [-o FILE] [--pretty]`
//
// Turns a recorded call log into a scenario (src/scenario/import-calls.ts): the base
// scenario's areas, catalogue, units (and travel/sim) with one incident per usable row.
// The scenario goes to FILE (or stdout); the import report — rows read, imported, and the
// rejected rows by reason with their line numbers — goes to stderr. A bad CSV, mapping or
// base: a message naming the file and field, exit code 2. Rejected rows are not errors.

import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { type ImportReport, importCalls } from '../../scenario/import-calls.ts';
import type { Scenario } from '../../scenario/types.ts';
import { isScenarioError, parseScenario } from '../../scenario/validate.ts';

const USAGE = 'usage: dispatch import-calls CSV --mapping FILE --base SCENARIO.json [-o FILE] [--pretty]\n';

class InputError extends Error {}

function fail(msg: string): number {
  process.stderr.write(`dispatch import-calls: ${msg}\n`);
  return 2;
}

function readText(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    throw new InputError(
      `cannot read ${what} ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
}

function readJson(file: string, what: string): unknown {
  const text = readText(file, what);
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new InputError(`${what} ${file} is not valid JSON: ${(e as Error).message}`);
  }
}

/** The rejected-row report, one line per reason. */
export function formatImportReport(r: ImportReport): string {
  const lines = [
    `import-calls: ${r.rows} rows read, ${r.imported} imported, ${r.rows - r.imported} rejected`,
  ];
  for (const [reason, g] of Object.entries(r.rejected)) {
    const more = g.count > g.rows.length ? ', …' : '';
    lines.push(`  ${reason}: ${g.count} (line${g.rows.length === 1 ? '' : 's'} ${g.rows.join(', ')}${more})`);
  }
  return `${lines.join('\n')}\n`;
}

export async function run(argv: string[]): Promise<number> {
  let values: { mapping?: string; base?: string; out?: string; pretty?: boolean; help?: boolean };
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        mapping: { type: 'string' },
        base: { type: 'string' },
        out: { type: 'string', short: 'o' },
        pretty: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (e) {
    return fail(`${(e as Error).message}\n${USAGE}`);
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positionals.length !== 1) return fail(`expected one CSV file\n${USAGE}`);
  if (values.mapping === undefined) return fail(`--mapping FILE is required\n${USAGE}`);
  if (values.base === undefined) {
    return fail(`--base SCENARIO.json is required (areas, catalogue and units of the district)\n${USAGE}`);
  }
  const csvFile = positionals[0];
  let text: string;
  try {
    const csv = readText(csvFile, 'call log');
    const mapping = readJson(values.mapping, 'mapping');
    const baseJson = readJson(values.base, 'base scenario');
    let base: Scenario;
    try {
      base = parseScenario(baseJson);
    } catch (e) {
      if (isScenarioError(e)) {
        throw new InputError(
          `base scenario ${values.base}: invalid at ${e.path}: expected ${e.expected}, got ${e.got}`,
        );
      }
      throw e;
    }
    let result: ReturnType<typeof importCalls>;
    try {
      result = importCalls(csv, mapping, base);
    } catch (e) {
      if (isScenarioError(e)) {
        const where = e.path.startsWith('mapping')
          ? values.mapping
          : e.path.startsWith('csv')
            ? csvFile
            : values.base;
        throw new InputError(`${where}: ${e.path}: expected ${e.expected}, got ${e.got}`);
      }
      throw e;
    }
    process.stderr.write(formatImportReport(result.report));
    text = `${values.pretty ? JSON.stringify(result.scenario, null, 2) : JSON.stringify(result.scenario)}\n`;
  } catch (e) {
    if (e instanceof InputError) return fail(e.message);
    throw e;
  }
  if (values.out === undefined) {
    process.stdout.write(text);
    return 0;
  }
  try {
    writeFileSync(values.out, text);
  } catch (e) {
    return fail(`cannot write ${values.out}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
  }
  return 0;
}
