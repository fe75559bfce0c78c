#!/usr/bin/env node
// Entry point of the `dispatch` command.
//
// It runs a bundled build of src/cli (esbuild: one module per command and shared chunks)
// from dist/cli/<key>/, where the key is taken from the sources' paths, sizes and times, the
// lock file and this file: when one changes the next start builds again (a few seconds).
// A restarted engine must be deciding again within two seconds, and loading is most of it:
// some 150 TypeScript modules through tsx's loader took seconds; the libraries as thousands
// of files through Node's module loader, 1.3 s; bundled with them, 0.6 s. Libraries that
// read files beside their own code at run time (WASM, worker threads, static assets) stay
// imports; BullMQ inlines its Lua scripts and is bundled, with ioredis and pino. `serve` loads
// its HTTP and socket stack in a chunk of its own after the core runs (src/cli/commands/serve.ts).
// Source maps are written but read only with DISPATCH_SOURCE_MAPS=1: parsing them at start
// cost another 0.2 s. DISPATCH_FROM_SOURCE=1 runs the sources through tsx instead.

/** Kept as imports (see above). */
const EXTERNAL = [
  '@electric-sql/pglite',
  '@fastify/swagger-ui',
  'thread-stream',
  'pg-native',
  'esbuild',
  'tsx',
  'playwright-core',
];

/** CommonJS libraries inside an ES module bundle still call require and read __dirname. */
const BANNER = [
  "import { createRequire as __dispatchRequire } from 'node:module';",
  "import { fileURLToPath as __dispatchPath } from 'node:url';",
  "import { dirname as __dispatchDir } from 'node:path';",
  'const require = __dispatchRequire(import.meta.url);',
  'const __filename = __dispatchPath(import.meta.url);',
  'const __dirname = __dispatchDir(__filename);',
].join(' ');

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const SRC = join(ROOT, 'src');
const OUT = join(ROOT, 'dist', 'cli');

/** Key of the sources: every file's path, size and modification time. */
function sourceKey() {
  const h = createHash('sha256');
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else {
        const s = statSync(p);
        h.update(`${relative(SRC, p)}\0${s.size}\0${s.mtimeMs}\n`);
      }
    }
  };
  walk(SRC);
  for (const f of [join(ROOT, 'package-lock.json'), fileURLToPath(import.meta.url)]) {
    const s = existsSync(f) ? statSync(f) : undefined;
    h.update(`${relative(ROOT, f)}\0${s?.size}\0${s?.mtimeMs}\n`);
  }
  return h.digest('hex').slice(0, 16);
}

async function build(key) {
  const dir = join(OUT, key);
  if (existsSync(join(dir, 'main.js'))) return dir;
  const { build: esbuild } = await import('esbuild');
  mkdirSync(OUT, { recursive: true });
  // Built aside and renamed into place, so that processes starting together never load a
  // half-written build; the loser of a race uses the winner's.
  const tmp = join(OUT, `.tmp-${key}-${process.pid}`);
  await esbuild({
    entryPoints: [join(SRC, 'cli/main.ts')],
    outdir: tmp,
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    external: EXTERNAL,
    banner: { js: BANNER },
    sourcemap: 'linked',
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'warning',
  });
  try {
    renameSync(tmp, dir);
  } catch {
    rmSync(tmp, { recursive: true, force: true });
  }
  // Older builds go (best effort: one may still be starting elsewhere and has loaded by now).
  for (const old of readdirSync(OUT)) {
    if (old !== key && !old.startsWith('.tmp-')) rmSync(join(OUT, old), { recursive: true, force: true });
  }
  return dir;
}

if (process.env.DISPATCH_FROM_SOURCE === '1') {
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
} else {
  if (process.env.DISPATCH_SOURCE_MAPS === '1') process.setSourceMapsEnabled(true);
  const dir = await build(sourceKey());
  await import(pathToFileURL(join(dir, 'main.js')).href);
}
