// The package's root directory (the one holding package.json), found from this module's own
// location: it holds both for the TypeScript sources (src/shared/) and for the bundled build
// (dist/cli/<key>/, see bin/dispatch.js), where paths relative to a module would differ.

import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(from: string): string {
  for (let d = from; ; ) {
    if (existsSync(join(d, 'package.json'))) return d;
    const up = dirname(d);
    if (up === d) throw new Error(`no package.json above ${from}`);
    d = up;
  }
}

export const PACKAGE_ROOT = findRoot(dirname(fileURLToPath(import.meta.url)));

/** A path inside the package, e.g. packagePath('src/store/migrations'). */
export const packagePath = (...parts: string[]): string => join(PACKAGE_ROOT, ...parts);
