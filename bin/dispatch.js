#!/usr/bin/env node
// Entry point of the `dispatch` command.
//
// It runs a bundled build of src/cli (esbuild: one module per command and shared chunks, the
// libraries left as imports) from dist/cli/<key>/, where the key is taken from the sources'
// paths, sizes and times: when a source changes the next start builds again (about a second).
// Loading some 150 TypeScript modules through tsx's loader costs seconds at every start, and
// a restarted engine must be deciding again within two. DISPATCH_FROM_SOURCE=1 runs the
// sources through tsx instead (no build).
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
    packages: 'external',
    sourcemap: 'linked',
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
  process.setSourceMapsEnabled(true);
  const dir = await build(sourceKey());
  await import(pathToFileURL(join(dir, 'main.js')).href);
}
