/** Tool `list_artifacts`: a run's artifact files and folders, optionally recursive, bounded. */
import { z } from 'zod';
import { listArtifacts } from '../../mlflow/artifacts.js';
import { defineTool } from './define.js';

export const listArtifactsTool = defineTool({
  name: 'list_artifacts',
  title: 'List artifacts',
  description:
    "List a run's artifacts under a folder (default the root), optionally recursively, up to max_results entries.",
  input: {
    run_id: z.string().describe('Run id'),
    path: z.string().default('').describe('Run-relative folder (default root)'),
    recursive: z.boolean().default(false).describe('Descend into folders'),
    max_results: z
      .number()
      .int()
      .min(1)
      .max(2000)
      .default(200)
      .describe('Most entries to return (default 200)'),
  },
  output: {
    run_id: z.string(),
    files: z.array(z.object({ path: z.string(), is_dir: z.boolean(), file_size: z.number().optional() })),
    truncated: z.boolean(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, path, recursive, max_results }, ctx) {
    const all = await listArtifacts(ctx.client, run_id, path, { recursive });
    const files = all.slice(0, max_results).map((f) => ({
      path: f.path ?? '',
      is_dir: !!f.is_dir,
      file_size: f.file_size,
    }));
    return {
      structured: { run_id, files, truncated: all.length > max_results },
      text: `${all.length} entr${all.length === 1 ? 'y' : 'ies'}${all.length > max_results ? ` (showing ${max_results})` : ''}: ${files
        .map((f) => (f.is_dir ? `${f.path}/` : `${f.path} (${f.file_size ?? 0} B)`))
        .join(', ')}`,
    };
  },
});
