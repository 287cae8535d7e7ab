/** Tool `set_tags`: set run tags (last write wins). */
import { z } from 'zod';
import { defineTool } from './define.js';
import { assertNoReservedTags } from './shapes.js';

export const setTagsTool = defineTool({
  name: 'set_tags',
  title: 'Set tags',
  description:
    'Set tags on an open run (overwrites). Use mlflow.note.content for the run description. Keys under runwarden. are reserved.',
  input: {
    run_id: z.string().describe('Run id from start_run'),
    tags: z.record(z.string(), z.string()).describe('Key → value; values up to 8000 chars'),
  },
  output: {
    run_id: z.string(),
    set: z.number(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run({ run_id, tags }, ctx) {
    assertNoReservedTags(tags);
    const run = await ctx.runs.get(run_id);
    await run.setTags(tags);
    const n = Object.keys(tags).length;
    return { structured: { run_id, set: n }, text: `Set ${n} tag(s) on run ${run_id}.` };
  },
});
