// Read-only mode: only the read-only tools are listed and callable.
import { describe, expect, it } from 'vitest';
import { failed, fake, ok, open, seedRun, useToolSessions } from './tool-session.js';

useToolSessions();

describe('read-only mode', () => {
  const READ_ONLY = [
    'search_experiments',
    'get_run',
    'search_runs',
    'get_metric_history',
    'compare_runs',
    'list_artifacts',
    'read_artifact',
    'get_model_version',
  ];

  it('tools/list in read-only mode holds exactly the read-only tools and no mutating one', async () => {
    const ro = await open({ readOnly: true });
    expect(ro.tools.map((t) => t.name).sort()).toEqual([...READ_ONLY].sort());
    for (const t of ro.tools) expect(t.annotations?.readOnlyHint).toBe(true);
  });

  it('read-only mode: calling a mutating tool anyway is an isError result and nothing is sent', async () => {
    const ro = await open({ readOnly: true });
    const text = failed(await ro.call('start_run', { experiment_name: 'e' }));
    expect(text).toBe('MCP error -32602: Tool start_run not found');
    expect(fake.requests).toEqual([]);
  });

  it('read-only mode: a read-only tool still works', async () => {
    const ro = await open({ readOnly: true });
    const run = seedRun();
    expect(ok(await ro.call('get_run', { run_id: run.info.run_id }), 'get_run', ro).run_id).toBe(
      run.info.run_id,
    );
  });
});
