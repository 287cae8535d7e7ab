/** Tool `read_artifact`: read a small artifact file, capped in bytes with the cap stated. */
import { z } from 'zod';
import { readArtifact } from '../../mlflow/artifacts.js';
import { ok } from '../../mlflow/client.js';
import { defineTool } from './define.js';

export const readArtifactTool = defineTool({
  name: 'read_artifact',
  title: 'Read artifact',
  description:
    'Read an artifact file of a run as UTF-8 text (or base64). Reads at most max_bytes (server cap applies); says when it truncated.',
  input: {
    run_id: z.string().describe('Run id'),
    path: z.string().min(1).describe('Run-relative file path, e.g. "metrics/report.json"'),
    max_bytes: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe('Bytes to read (default and maximum: the server cap)'),
    encoding: z.enum(['utf8', 'base64']).default('utf8').describe('utf8 for text, base64 for binary'),
  },
  output: {
    run_id: z.string(),
    path: z.string(),
    content: z.string(),
    bytes_returned: z.number(),
    truncated: z.boolean(),
    cap_bytes: z.number(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, path, max_bytes, encoding }, ctx) {
    const cap = Math.min(max_bytes ?? ctx.settings.readArtifactMaxBytes, ctx.settings.readArtifactMaxBytes);
    const run = await ok(ctx.client.api.GET('/api/2.0/mlflow/runs/get', { params: { query: { run_id } } }));
    const { bytes, truncated } = await readArtifact(ctx.client, run.run?.info?.artifact_uri ?? '', path, cap);
    const content = bytes.toString(encoding);
    return {
      structured: { run_id, path, content, bytes_returned: bytes.length, truncated, cap_bytes: cap },
      text: `${path} (${bytes.length} bytes${truncated ? `, truncated at the ${cap}-byte cap` : ''}):\n${encoding === 'utf8' ? content : '[base64 in structuredContent]'}`,
    };
  },
});
