// The model-based test of issue #6 at full size: 10,000 random command sequences (up to 60
// commands each) through the live API, each against a fresh engine, every invariant checked
// after every step (test/model/machine.ts). Unlike the vitest file it does not stop at the
// first failure: it runs them all, counts failures, prints the first few, then lets
// fast-check shrink the first one to a minimal sequence.
//
//   npm run bench:model                      # 10,000 runs, seed 1
//   MODEL_RUNS=500 MODEL_SEED=7 npm run bench:model
//   MODEL_STRICT_DISPATCH=1 npm run bench:model   # the engine's exclusion limit fails too

import fc from 'fast-check';
import { runSequence, sequences, stats, summary } from '../test/model/machine.ts';

const RUNS = Number(process.env.MODEL_RUNS ?? 10_000);
const SEED = Number(process.env.MODEL_SEED ?? 1);
const MAX_COMMANDS = 60;
const CHUNK = 250;

const failures: { run: number; message: string; commands: string }[] = [];
const t0 = performance.now();
for (let done = 0; done < RUNS; ) {
  const n = Math.min(CHUNK, RUNS - done);
  const batch = fc.sample(sequences(MAX_COMMANDS), { numRuns: n, seed: SEED + done });
  for (const cmds of batch) {
    const list = [...cmds];
    try {
      await runSequence(list);
    } catch (err) {
      failures.push({
        run: done,
        message: err instanceof Error ? err.message : String(err),
        commands: list.map(String).join(', '),
      });
    }
    done++;
    if (done % 1000 === 0) {
      const s = ((performance.now() - t0) / 1000).toFixed(0);
      process.stderr.write(
        `  ${done}/${RUNS} runs, ${stats.steps} steps, ${failures.length} failures, ${s} s\n`,
      );
    }
  }
}
const wallS = (performance.now() - t0) / 1000;

console.log(
  `model ${RUNS}: runs ${stats.runs}, steps ${stats.steps}, failures ${failures.length} (seed ${SEED}, ${wallS.toFixed(0)} s)`,
);
console.log(`  ${summary()}`);
for (const f of failures.slice(0, 3)) console.log(`  FAILED run ${f.run}: ${f.message}\n    ${f.commands}`);
if (failures.length > 0) {
  // Shrink the first failure to a minimal sequence.
  const first = failures[0].run;
  const chunkStart = first - (first % CHUNK);
  const res = await fc.check(
    fc.asyncProperty(sequences(MAX_COMMANDS), (c) => runSequence(c)),
    {
      numRuns: Math.min(CHUNK, RUNS - chunkStart),
      seed: SEED + chunkStart,
    },
  );
  if (res.failed)
    console.log(`  minimal: ${fc.stringify(res.counterexample?.[0])}\n  ${String(res.errorInstance)}`);
}
process.exitCode = failures.length > 0 ? 1 : 0;
