// `dispatch generate --preset NAME [--hours H] [--seed S] [--surge] [--pretty] [-o FILE]`
//
// Writes a synthetic scenario (src/scenario/generate.ts): compact JSON and a newline, to FILE
// or to stdout without -o; --pretty indents it. Deterministic: the same options give the
// same bytes. Defaults: --hours 24, --seed 1. --surge adds the preset's typhoon evening.
// Bad options: a message naming the option, exit code 2.

import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { generateScenario, PRESET_NAMES, type PresetName } from '../../scenario/generate.ts';

const USAGE =
  'usage: dispatch generate --preset NAME [--hours H] [--seed S] [--surge] [--pretty] [-o FILE]\n';

function fail(msg: string): number {
  process.stderr.write(`dispatch generate: ${msg}\n`);
  return 2;
}

export async function run(argv: string[]): Promise<number> {
  let values: {
    preset?: string;
    hours?: string;
    seed?: string;
    surge?: boolean;
    pretty?: boolean;
    out?: string;
    help?: boolean;
  };
  try {
    ({ values } = parseArgs({
      args: argv,
      allowPositionals: false,
      options: {
        preset: { type: 'string' },
        hours: { type: 'string' },
        seed: { type: 'string' },
        surge: { type: 'boolean' },
        pretty: { type: 'boolean' },
        out: { type: 'string', short: 'o' },
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
  if (values.preset === undefined)
    return fail(`--preset is required (one of ${PRESET_NAMES.join(', ')})\n${USAGE}`);
  if (!(PRESET_NAMES as readonly string[]).includes(values.preset)) {
    return fail(`--preset: unknown preset "${values.preset}" (one of ${PRESET_NAMES.join(', ')})`);
  }
  const hours = values.hours === undefined ? 24 : Number(values.hours);
  if (values.hours !== undefined && (values.hours.trim() === '' || !Number.isFinite(hours) || hours <= 0)) {
    return fail(`--hours must be a number > 0, got "${values.hours}"`);
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (values.seed !== undefined && (values.seed.trim() === '' || !Number.isSafeInteger(seed))) {
    return fail(`--seed must be an integer, got "${values.seed}"`);
  }
  let text: string;
  try {
    const scenario = generateScenario({
      preset: values.preset as PresetName,
      hours,
      seed,
      surge: values.surge,
    });
    text = `${values.pretty ? JSON.stringify(scenario, null, 2) : JSON.stringify(scenario)}\n`;
  } catch (e) {
    if (e instanceof RangeError) return fail(e.message);
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
