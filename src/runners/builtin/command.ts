/**
 * The command line of a built-in trainer: this Node binary running the trainers' entry (main.ts
 * beside this file) in the template's workspace. Run from the compiled package, the entry is
 * `dist/runners/builtin/main.js`; run from the sources under tsx (tests, `npm run dev`), it is the
 * `.ts` file and the child gets the tsx loader too, by absolute URL (the child's working directory
 * is the workspace, where a bare `tsx` would not resolve).
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { BuiltinTrainer } from '../../model/template.js';

/** Absolute path of the trainers' entry, `.ts` or `.js` as this module is. */
export function builtinEntry(): string {
  const here = fileURLToPath(import.meta.url);
  return path.join(path.dirname(here), `main${path.extname(here)}`);
}

/** `[node, (--import <tsx>), <entry>, <trainer>, --config, config.yml]`, run in the workspace. */
export function builtinArgv(trainer: BuiltinTrainer): string[] {
  const entry = builtinEntry();
  const loader = entry.endsWith('.ts')
    ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
    : [];
  return [process.execPath, ...loader, entry, trainer, '--config', 'config.yml'];
}
