/**
 * What a task's inputs were, without their bytes: `inputs.json` in the workspace (and so in
 * `workspace.zip`, which by default carries no copy of the inputs). One entry per input: its name,
 * its URI with its credentials (userinfo, token-like query values) redacted to `***` (`inline` for an inline table), whether it was a file or a
 * folder, its sha256 and its size. A folder's digest is the sha256 of its `sha256sum`-style
 * listing (`<sha256>  <relative path>\n` per file, sorted by path).
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { redactUri } from '../errors/echo.js';
import type { InlineTable } from '../model/task-spec.js';

export interface InputManifestEntry {
  name: string;
  /** The URI as given, credentials redacted (`redactUri`); `inline` for an inline table. */
  uri: string;
  kind: 'file' | 'folder';
  sha256: string;
  bytes: number;
  files: number;
}

/** File name of the manifest at the workspace root. */
const INPUT_MANIFEST_FILE = 'inputs.json';

async function fileDigest(file: string): Promise<string> {
  const h = createHash('sha256');
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest('hex');
}

async function filesUnder(dir: string, base = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = base ? `${base}/${e.name}` : e.name;
    if (e.isDirectory()) out.push(...(await filesUnder(path.join(dir, e.name), rel)));
    else if (e.isFile()) out.push(rel);
  }
  return out;
}

async function describe(
  local: string,
): Promise<Pick<InputManifestEntry, 'kind' | 'sha256' | 'bytes' | 'files'>> {
  const st = await stat(local);
  if (st.isFile()) return { kind: 'file', sha256: await fileDigest(local), bytes: st.size, files: 1 };
  const rels = (await filesUnder(local)).sort();
  let listing = '';
  let bytes = 0;
  for (const rel of rels) {
    const abs = path.join(local, ...rel.split('/'));
    listing += `${await fileDigest(abs)}  ${rel}\n`;
    bytes += (await stat(abs)).size;
  }
  return {
    kind: 'folder',
    sha256: createHash('sha256').update(listing).digest('hex'),
    bytes,
    files: rels.length,
  };
}

/** Describe the materialised inputs (`local`: name → path, as `materializeInputs` returns). */
export async function inputManifest(
  inputs: Record<string, string | InlineTable>,
  local: Record<string, string>,
): Promise<InputManifestEntry[]> {
  const out: InputManifestEntry[] = [];
  for (const [name, input] of Object.entries(inputs)) {
    const at = local[name];
    if (!at) continue;
    out.push({
      name,
      uri: typeof input === 'string' ? redactUri(input) : 'inline',
      ...(await describe(at)),
    });
  }
  return out;
}

/** Write the manifest as `<dir>/inputs.json`. */
export async function writeInputManifest(dir: string, entries: InputManifestEntry[]): Promise<string> {
  const file = path.join(dir, INPUT_MANIFEST_FILE);
  await writeFile(file, `${JSON.stringify({ inputs: entries }, null, 2)}\n`);
  return file;
}
