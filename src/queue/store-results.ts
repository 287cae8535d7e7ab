/**
 * What an attempt stores on its run once the command has exited: the stdout/stderr logs, the
 * artifacts the script declared (paths normalised; missing or refused ones are logged, not
 * fatal), the template's model folder, and the workspace as a verified `workspace.zip` (inputs
 * left out unless asked for: inputs.json records their URIs and digests). The archive is built
 * and uploaded while the rest goes up. Returns the tags that describe the result.
 */
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../log.js';
import { uploadFile } from '../mlflow/artifacts.js';
import type { MlflowClient } from '../mlflow/client.js';
import { normalizeArtifactPath } from '../mlflow/paths.js';
import type { Template } from '../model/template.js';
import type { Workspace } from '../runners/workspace.js';
import { zipDirectory } from '../runners/zip.js';
import type { RunHandle } from '../tracking/run-handle.js';
import type { DeclaredArtifact } from './protocol-lines.js';

export async function storeResults(
  client: MlflowClient,
  run: RunHandle,
  ws: Workspace,
  template: Template,
  declared: DeclaredArtifact[],
  exitCode: number | null,
  log: Logger,
  opts: { zipInputs: boolean },
) {
  const tags: Record<string, string> = { 'runwarden.exit_code': String(exitCode ?? 'none') };
  // The archive is built and uploaded while the logs, declared artifacts and model go up.
  const files = async () => {
    await run.logArtifact(ws.logsDir, 'logs');
    for (const d of declared) {
      try {
        const rel = normalizeArtifactPath(d.path);
        const abs = path.join(ws.dir, rel);
        if (existsSync(abs))
          await run.logArtifact(abs, d.dest ?? path.posix.dirname(rel).replace(/^\.$/, ''));
        else log.warn({ path: d.path }, 'declared artifact does not exist');
      } catch (err) {
        log.warn({ path: d.path, err: (err as Error).message }, 'declared artifact refused');
      }
    }
    if (template.model) {
      const modelDir = path.join(ws.outputDir, template.model.path);
      const exists = existsSync(modelDir);
      tags['runwarden.model_exists'] = String(exists);
      tags['runwarden.model_format'] = template.model.format;
      if (exists) await run.logArtifact(modelDir, 'model');
    }
  };
  const archive = async () => {
    const zipFile = path.join(path.dirname(ws.dir), `${path.basename(ws.dir)}.zip`);
    try {
      // The inputs stay out unless asked for: inputs.json records their URIs and digests.
      const z = await zipDirectory(ws.dir, zipFile, {
        exclude: opts.zipInputs ? undefined : (rel) => rel.startsWith('inputs/'),
      });
      await uploadFile(client, run.artifactUri, zipFile, { fileName: 'workspace.zip' });
      tags['runwarden.workspace_zip_entries'] = String(z.entries);
    } finally {
      await rm(zipFile, { force: true });
    }
  };
  const [a, b] = await Promise.allSettled([files(), archive()]);
  for (const r of [a, b]) if (r.status === 'rejected') throw r.reason;
  return tags;
}
