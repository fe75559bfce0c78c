// `dispatch <command>`: each command lives in its own module under ./commands and returns
// its exit code. Modules load lazily so `dispatch replay` never loads the server stack.

import { parseArgs } from 'node:util';

type Command = { summary: string; load: () => Promise<{ run(argv: string[]): Promise<number> }> };

const COMMANDS: Record<string, Command> = {
  serve: {
    summary: 'run the live engine: API, websockets, console, workers',
    load: () => import('./commands/serve.ts'),
  },
  worker: {
    summary: 'run the notifications queue and webhook sender beside serve (DISPATCH_WORKERS=core)',
    load: () => import('./commands/worker.ts'),
  },
  replay: { summary: 'replay a scenario on the virtual clock', load: () => import('./commands/replay.ts') },
  figures: {
    summary: "appraisal figures (CSV, report) from a replay's events.ndjson",
    load: () => import('./commands/figures.ts'),
  },
  generate: { summary: 'write a synthetic scenario', load: () => import('./commands/generate.ts') },
  'import-calls': {
    summary: 'turn a recorded call log into a scenario',
    load: () => import('./commands/import-calls.ts'),
  },
  audit: {
    summary: 'audit verify: check the audit chain end to end',
    load: () => import('./commands/audit.ts'),
  },
  token: { summary: 'mint a bearer token for local use', load: () => import('./commands/token.ts') },
};

function usage(): string {
  const lines = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(13)} ${c.summary}`);
  return `usage: dispatch <command> [options]\n\ncommands:\n${lines.join('\n')}\n`;
}

async function main(argv: string[]): Promise<number> {
  const { positionals } = parseArgs({ args: argv.slice(0, 1), allowPositionals: true, strict: false });
  const name = positionals[0];
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    process.stdout.write(usage());
    return name ? 0 : 2;
  }
  const cmd = COMMANDS[name];
  if (!cmd) {
    process.stderr.write(`dispatch: unknown command "${name}"\n${usage()}`);
    return 2;
  }
  const mod = await cmd.load();
  return mod.run(argv.slice(1));
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dispatch: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
