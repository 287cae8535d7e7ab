// end_run: runs already closed, closed twice, or unknown.
import { describe, expect, it } from 'vitest';
import { BASE, textOf } from '../harness.js';
import { failed, fake, ok, s, seedRun, startRun, useToolSessions } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('end_run: ending a run that is already FINISHED succeeds with already_closed, who closed it, and a hint to start_run with parent_run_id', async () => {
    const run = seedRun({
      status: 'FINISHED',
      end_time: Date.UTC(2030, 0, 1),
      tags: { 'runwarden.closed_by': 'reaper', 'runwarden.close_reason': 'lease expired' },
    });
    const res = await s.call('end_run', { run_id: run.info.run_id });
    const out = ok(res, 'end_run');
    expect(out).toEqual({
      run_id: run.info.run_id,
      status: 'FINISHED',
      already_closed: true,
      closed_by: 'reaper',
      close_reason: 'lease expired',
      end_time: Date.UTC(2030, 0, 1),
      url: `${BASE}/#/experiments/1/runs/${run.info.run_id}`,
    });
    expect(textOf(res)).toBe(
      `Run ${run.info.run_id} was already FINISHED, closed by reaper at 2030-01-01T00:00:00.000Z (lease expired). ` +
        `Nothing changed. To continue the work, start_run with parent_run_id="${run.info.run_id}".`,
    );
    expect(fake.bodies('runs/update')).toEqual([]);
  });

  it('end_run: ending the same run twice reports already_closed the second time', async () => {
    const runId = await startRun();
    expect(ok(await s.call('end_run', { run_id: runId }), 'end_run').already_closed).toBe(false);
    const second = ok(await s.call('end_run', { run_id: runId }), 'end_run');
    expect(second).toMatchObject({ already_closed: true, status: 'FINISHED', closed_by: 'owner' });
    expect(fake.bodies('runs/update')).toHaveLength(1);
  });

  it('end_run: an unknown run id is an isError result pointing to search_runs', async () => {
    const text = failed(await s.call('end_run', { run_id: 'ghost' }));
    expect(text).toContain('RESOURCE_DOES_NOT_EXIST');
    expect(text).toContain('search_runs');
  });
});
