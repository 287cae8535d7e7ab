/** Tool `get_model_version`: a model version by number or by alias. */
import { z } from 'zod';
import { ValidationError } from '../../errors/index.js';
import { type ModelVersion, ok } from '../../mlflow/client.js';
import { defineTool } from './define.js';

export const getModelVersionTool = defineTool({
  name: 'get_model_version',
  title: 'Get model version',
  description:
    'Read a registered model version by number or by alias (e.g. "champion"): source, run, status, aliases, tags.',
  input: {
    name: z.string().min(1).describe('Registered model name'),
    version: z.string().regex(/^\d+$/).optional().describe('Version number (or give alias)'),
    alias: z.string().optional().describe('Alias, e.g. "champion" (or give version)'),
  },
  output: {
    name: z.string(),
    version: z.string(),
    status: z.string(),
    source: z.string().optional(),
    run_id: z.string().optional(),
    aliases: z.array(z.string()),
    tags: z.record(z.string(), z.string()),
    description: z.string().optional(),
    created_at: z.string().optional(),
    url: z.string(),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  hints: {
    INVALID_PARAMETER_VALUE:
      'That alias or version does not exist on this model; check get_model_version with a version number.',
  },
  async run({ name, version, alias }, ctx) {
    if (!version === !alias) throw new ValidationError('version', 'give exactly one of version or alias');
    let mv: ModelVersion | undefined;
    if (version) {
      mv = (
        await ok(
          ctx.client.api.GET('/api/2.0/mlflow/model-versions/get', { params: { query: { name, version } } }),
        )
      ).model_version;
    } else {
      mv = (
        await ok(
          ctx.client.api.GET('/api/2.0/mlflow/registered-models/alias', {
            params: { query: { name, alias: alias! } },
          }),
        )
      ).model_version;
    }
    const v = mv ?? {};
    const structured = {
      name,
      version: v.version ?? '',
      status: v.status ?? 'READY',
      source: v.source,
      run_id: v.run_id || undefined,
      aliases: v.aliases ?? [],
      tags: Object.fromEntries((v.tags ?? []).map((t) => [t.key ?? '', t.value ?? ''])),
      description: v.description || undefined,
      created_at: v.creation_timestamp ? new Date(v.creation_timestamp).toISOString() : undefined,
      url: `${ctx.client.uiUrl}/#/models/${encodeURIComponent(name)}/versions/${v.version ?? ''}`,
    };
    return {
      structured,
      text: `${name} version ${structured.version} (${structured.status})${structured.aliases.length ? ` aliases ${structured.aliases.join(', ')}` : ''}; run ${structured.run_id ?? '—'}. ${structured.url}`,
    };
  },
});
