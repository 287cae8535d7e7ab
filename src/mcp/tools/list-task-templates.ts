/** Tool `list_task_templates`: the registered task templates with their parameters, bounds and inputs. */
import { z } from 'zod';
import { ValidationError } from '../../errors/index.js';
import { defineTool } from './define.js';
import { tasksOf } from './get-task.js';

export const listTaskTemplatesTool = defineTool({
  name: 'list_task_templates',
  title: 'List task templates',
  description:
    'Templates enqueue_task can run: what each does, its params (type, default, bounds or values), inputs and ' +
    'metrics (primary first).',
  input: {
    name: z.string().optional().describe('Only this template'),
  },
  output: {
    templates: z.array(
      z.object({
        name: z.string(),
        description: z.string(),
        params: z.record(z.string(), z.unknown()),
        inputs: z.record(z.string(), z.unknown()),
        metrics: z.array(z.string()),
      }),
    ),
  },
  annotations: { readOnlyHint: true, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx) {
    const all = tasksOf(ctx).templates();
    const chosen = args.name === undefined ? all : all.filter((t) => t.name === args.name);
    if (args.name !== undefined && !chosen.length) {
      throw new ValidationError(
        'name',
        `no template '${args.name}'; registered templates: ${all.map((t) => t.name).join(', ') || 'none'}`,
      );
    }
    const templates = chosen.map((t) => ({
      name: t.name,
      description: t.description,
      params: t.params as Record<string, Record<string, unknown>>,
      inputs: Object.fromEntries(
        Object.entries(t.inputs).map(([k, v]) => [k, { description: v.description, required: v.required }]),
      ),
      metrics: t.primary_metric
        ? [t.primary_metric.name, ...t.metrics.filter((m) => m !== t.primary_metric?.name)]
        : t.metrics,
    }));
    const text = templates.length
      ? templates
          .map(
            (t) =>
              `${t.name}: ${t.description.replace(/\.?\s*$/, '.')} Params: ${
                Object.entries(t.params)
                  .map(
                    ([k, d]) =>
                      `${k} (${String(d.type)}${d.default !== undefined ? `, default ${JSON.stringify(d.default)}` : ''}${d.min !== undefined || d.max !== undefined ? `, ${d.min ?? '-∞'}..${d.max ?? '∞'}` : ''}${Array.isArray(d.values) ? `, one of ${d.values.join('|')}` : ''})`,
                  )
                  .join(', ') || 'none'
              }.`,
          )
          .join('\n')
      : 'No task templates are registered (RUNWARDEN_TASKS_DIR holds <name>/task.yaml).';
    return { structured: { templates }, text };
  },
});
