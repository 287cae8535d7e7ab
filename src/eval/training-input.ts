/**
 * The claim check's view of a run's training input: the inputs the run recorded (`inputs.json` in
 * its `workspace.zip`, read without unpacking the rest, both bounded) and the bytes of one of them,
 * read only as a `file://` input the input policy allows (the template's own default: inside the
 * tasks folder) and only when its sha256 still matches the recorded one. Anything that only means
 * "this cannot be checked" is a `Skip` with the reason.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import yauzl from 'yauzl';
import { capForEcho, redactUri } from '../errors/echo.js';
import { downloadFile, listArtifacts } from '../mlflow/artifacts.js';
import type { MlflowClient } from '../mlflow/client.js';
import { type InputPolicy, resolveLocalInput } from '../runners/input-policy.js';

/** Largest `inputs.json` read from the workspace archive. */
const MANIFEST_MAX_BYTES = 1024 * 1024;
/** Largest training input read (bytes). */
export const TRAINING_INPUT_MAX_BYTES = 64 * 1024 * 1024;

/** A reason the claim cannot be checked (skipped, not failed). */
export class Skip extends Error {}

/** Reads one entry of a zip file (at most `maxBytes`); undefined when absent. */
function readZipEntry(file: string, name: string, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    yauzl.open(file, { lazyEntries: true, validateEntrySizes: true }, (err, zf) => {
      if (err || !zf) return reject(err ?? new Error('cannot open zip'));
      let found = false;
      zf.on('error', reject);
      zf.on('entry', (entry: yauzl.Entry) => {
        if (entry.fileName !== name) return zf.readEntry();
        found = true;
        if (entry.uncompressedSize > maxBytes) {
          zf.close();
          return reject(
            new Skip(`${name} in workspace.zip is ${entry.uncompressedSize} bytes, more than ${maxBytes}`),
          );
        }
        zf.openReadStream(entry, (e, stream) => {
          if (e || !stream) return reject(e ?? new Error(`cannot read ${name}`));
          const parts: Buffer[] = [];
          stream.on('data', (c: Buffer) => parts.push(c));
          stream.on('error', reject);
          stream.on('end', () => {
            zf.close();
            resolve(Buffer.concat(parts));
          });
        });
      });
      zf.on('end', () => {
        if (!found) resolve(undefined);
      });
      zf.readEntry();
    });
  });
}

export interface ManifestEntry {
  name: string;
  uri: string;
  kind: string;
  sha256?: string;
}

/** The run's recorded inputs (inputs.json inside workspace.zip). */
export async function recordedInputs(
  client: MlflowClient,
  run: { runId: string; artifactUri: string },
  maxZipBytes: number,
): Promise<ManifestEntry[]> {
  const top = await listArtifacts(client, run.runId, '');
  const zip = top.find((f) => f.path === 'workspace.zip');
  if (!zip) throw new Skip('the run stored no workspace.zip, so its training inputs are unknown');
  const size = Number(zip.file_size ?? 0);
  if (size > maxZipBytes)
    throw new Skip(
      `workspace.zip is ${size} bytes, more than RUNWARDEN_EVAL_MAX_MODEL_BYTES (${maxZipBytes})`,
    );
  const dir = await mkdtemp(path.join(tmpdir(), 'rw-claim-'));
  try {
    const file = path.join(dir, 'workspace.zip');
    await downloadFile(client, run.artifactUri, 'workspace.zip', file);
    const raw = await readZipEntry(file, 'inputs.json', MANIFEST_MAX_BYTES);
    if (!raw) throw new Skip('workspace.zip has no inputs.json, so the training inputs are unknown');
    let doc: { inputs?: unknown };
    try {
      doc = JSON.parse(raw.toString('utf8')) as { inputs?: unknown };
    } catch {
      throw new Skip('inputs.json in workspace.zip is not JSON');
    }
    if (!Array.isArray(doc.inputs)) throw new Skip('inputs.json in workspace.zip lists no inputs');
    return (doc.inputs as unknown[]).filter(
      (e): e is ManifestEntry =>
        typeof e === 'object' &&
        e !== null &&
        typeof (e as ManifestEntry).name === 'string' &&
        typeof (e as ManifestEntry).uri === 'string',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Reads one recorded input through the input policy, checking its recorded sha256. */
export async function readInput(
  e: ManifestEntry,
  policy: InputPolicy,
  defaults: { root: string; uris: Record<string, string> } | undefined,
): Promise<string> {
  const shown = capForEcho(redactUri(e.uri), 200);
  if (e.kind !== 'file')
    throw new Skip(`input '${capForEcho(e.name, 80)}' is a ${capForEcho(e.kind, 20)}, not a file`);
  if (!e.uri.startsWith('file://'))
    throw new Skip(
      `input '${capForEcho(e.name, 80)}' (${shown}) is not a local file:// input; the judge reads only those`,
    );
  const roots = defaults && defaults.uris[e.name] === e.uri ? [defaults.root] : policy.roots;
  let real: string;
  try {
    real = (await resolveLocalInput(`inputs.${e.name}`, e.uri, policy, roots)).real;
  } catch (err) {
    throw new Skip(capForEcho((err as Error).message, 400));
  }
  const st = await stat(real);
  if (st.size > TRAINING_INPUT_MAX_BYTES)
    throw new Skip(
      `input '${capForEcho(e.name, 80)}' is ${st.size} bytes, more than ${TRAINING_INPUT_MAX_BYTES}`,
    );
  const bytes = await readFile(real);
  const digest = createHash('sha256').update(bytes).digest('hex');
  if (e.sha256 && digest !== e.sha256)
    throw new Skip(
      `input '${capForEcho(e.name, 80)}' (${shown}) changed since the run trained: sha256 ${digest.slice(0, 16)}…, recorded ${capForEcho(e.sha256, 16)}…`,
    );
  return bytes.toString('utf8');
}
