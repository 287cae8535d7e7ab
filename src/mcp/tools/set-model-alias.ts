/** Tool `set_model_alias`: point an alias (e.g. champion) at a model version. */
import { z } from 'zod';
import { isMlflowError } from '../../errors/index.js';
import { ok } from '../../mlflow/client.js';
import { validateAlias } from '../../tracking/models.js';
import { defineTool } from './define.js';

export const setModelAliasTool = defineTool({
  name: 'set_model_alias',
  title: 'Set model alias',
  description:
    'Point an alias of a registered model at a version (moves it if it points elsewhere). Reports the previous version.',
  input: {
    name: z.string().min(1).describe('Registered model name'),
    alias: z.string().min(1).max(255).describe('Alias, e.g. "champion"; not "latest" or v<N>'),
    version: z.string().regex(/^\d+$/).describe('Version number, e.g. "3"'),
  },
  output: {
    name: z.string(),
    alias: z.string(),
    version: z.string(),
    previous_version: z.string().optional(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ name, alias, version }, ctx) {
    validateAlias(alias);
    let previous: string | undefined;
    try {
      const cur = await ok(
        ctx.client.api.GET('/api/2.0/mlflow/registered-models/alias', { params: { query: { name, alias } } }),
      );
      previous = cur.model_version?.version;
    } catch (err) {
      // MLflow answers an unknown alias with INVALID_PARAMETER_VALUE (400) or RESOURCE_DOES_NOT_EXIST.
      if (!isMlflowError(err, 'INVALID_PARAMETER_VALUE') && !isMlflowError(err, 'RESOURCE_DOES_NOT_EXIST'))
        throw err;
    }
    await ok(
      ctx.client.api.POST('/api/2.0/mlflow/registered-models/alias', { body: { name, alias, version } }),
    );
    return {
      structured: { name, alias, version, previous_version: previous },
      text: `${name}@${alias} → version ${version}${previous && previous !== version ? ` (was ${previous})` : ''}.`,
    };
  },
});
