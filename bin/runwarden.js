#!/usr/bin/env node
// The `runwarden` command: runs the compiled CLI (built by `npm run build`, run on install by `prepare`).
import('../dist/cli/index.js').catch((err) => {
  if (err && err.code === 'ERR_MODULE_NOT_FOUND' && String(err.message).includes('dist/cli')) {
    process.stderr.write('runwarden: not built yet; run `npm run build` in the runwarden folder.\n');
    process.exit(1);
  }
  throw err;
});
