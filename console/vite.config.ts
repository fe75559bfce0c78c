// Build of the browser clients (dispatcher console, field-unit page, replay viewer) into
// dist/console, which `startHttp({ consoleDir })` / `dispatch serve` serve at `/`.
// `npm run build:console`. Each page is also written as <name>/index.html so that `/unit`
// and `/replay` work as well as `/unit.html` and `/replay.html` (assets use absolute paths).

import { copyFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig, type Plugin } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));
const outDir = fileURLToPath(new URL('../dist/console', import.meta.url));
const PAGES = ['index', 'unit', 'replay'] as const;

/** Writes `unit/index.html` next to `unit.html` (and so on) for extension-less URLs. */
function directoryIndexes(): Plugin {
  return {
    name: 'dispatch-directory-indexes',
    apply: 'build',
    enforce: 'post',
    writeBundle() {
      for (const page of PAGES) {
        if (page === 'index') continue;
        const html = join(outDir, `${page}.html`);
        if (!existsSync(html)) continue;
        mkdirSync(join(outDir, page), { recursive: true });
        copyFileSync(html, join(outDir, page, 'index.html'));
      }
    },
  };
}

export default defineConfig({
  root,
  base: '/',
  publicDir: false,
  logLevel: 'warn',
  plugins: [directoryIndexes()],
  build: {
    outDir,
    emptyOutDir: true,
    target: 'es2022',
    chunkSizeWarningLimit: 1024,
    rolldownOptions: {
      input: Object.fromEntries(
        PAGES.map((p) => [p, fileURLToPath(new URL(`./${p}.html`, import.meta.url))]),
      ),
    },
  },
});
