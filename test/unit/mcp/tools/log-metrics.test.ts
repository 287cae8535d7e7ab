// log_metrics: batching, the lease riding along, and runs closed or owned elsewhere.
import { describe, expect, it, vi } from 'vitest';
import { tagsOf } from '../harness.js';
import {
  failed,
  fake,
  logBatchesFor,
  ok,
  s,
  seedRun,
  startRun,
  useToolSessions,
  writes,
} from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('log_metrics: writing to a run that was closed elsewhere says who closed it and to start_run with parent_run_id', async () => {
    const run = seedRun({
      status: 'KILLED',
      tags: { 'runwarden.closed_by': 'reaper', 'runwarden.close_reason': 'lease expired' },
    });
    const text = failed(
      await s.call('log_metrics', { run_id: run.info.run_id, metrics: [{ key: 'loss', value: 1 }] }),
    );
    expect(text).toContain(
      `run ${run.info.run_id} is already closed (KILLED, closed by reaper: lease expired)`,
    );
    expect(text).toContain('start_run (parent_run_id links it to the old one)');
  });

  it('log_metrics: a run this session started that the reaper closed meanwhile is refused with who closed it, and close() leaves it alone', async () => {
    const runId = await startRun();
    const run = fake.runs.get(runId)!;
    run.info.status = 'KILLED';
    run.tags.set('runwarden.closed_by', 'reaper').set('runwarden.close_reason', 'lease expired');
    const before = writes();
    const text = failed(await s.call('log_metrics', { run_id: runId, metrics: [{ key: 'loss', value: 1 }] }));
    expect(text).toContain(`run ${runId} is already closed (KILLED, closed by reaper: lease expired)`);
    expect(text).toContain('start_run (parent_run_id links it to the old one)');
    await s.close();
    expect(writes()).toBe(before);
  });
});

describe('leases and run tags', () => {
  it('log_metrics: 2,500 points are all sent, in log-batch requests of at most 1000 metrics', async () => {
    const runId = await startRun();
    const metrics = Array.from({ length: 2500 }, (_, i) => ({
      key: i % 2 ? 'acc' : 'loss',
      value: i / 100,
      step: i,
    }));
    const out = ok(await s.call('log_metrics', { run_id: runId, metrics }), 'log_metrics');
    expect(out).toEqual({ run_id: runId, logged: 2500, keys: ['loss', 'acc'] });
    const batches = logBatchesFor(runId).filter((b) => b.metrics?.length);
    expect(batches.reduce((n, b) => n + b.metrics!.length, 0)).toBe(2500);
    for (const b of batches) expect(b.metrics!.length).toBeLessThanOrEqual(1000);
    expect(fake.runs.get(runId)!.history.map((m) => m.step)).toEqual(
      Array.from({ length: 2500 }, (_, i) => i),
    );
  });

  it('log_metrics: the lease tag runwarden.lease_expires_at rides along with the points, renewed from the call time', async () => {
    vi.useFakeTimers({ toFake: ['Date'] });
    const t0 = Date.UTC(2030, 0, 1);
    vi.setSystemTime(t0);
    const runId = await startRun();
    vi.setSystemTime(t0 + 5_000);
    ok(
      await s.call('log_metrics', { run_id: runId, metrics: [{ key: 'loss', value: 1, step: 0 }] }),
      'log_metrics',
    );
    const withPoints = logBatchesFor(runId).filter((b) => b.metrics?.length);
    expect(withPoints).toHaveLength(1);
    expect(withPoints[0]!.metrics).toEqual([{ key: 'loss', value: 1, step: 0, timestamp: t0 + 5_000 }]);
    expect(tagsOf(withPoints[0]!)).toEqual({
      'runwarden.lease_expires_at': String(t0 + 5_000 + 900_000),
      'runwarden.heartbeat_at': String(t0 + 5_000),
    });
    expect(fake.runs.get(runId)!.tags.get('runwarden.lease_expires_at')).toBe(String(t0 + 905_000));
  });

  it("log_metrics: a task attempt's run (owner worker:...) is refused, not adopted, and nothing is written to it", async () => {
    const run = seedRun({ tags: { 'runwarden.owner': 'worker:w@h:1' } });
    const before = writes();
    const text = failed(
      await s.call('log_metrics', { run_id: run.info.run_id, metrics: [{ key: 'loss', value: 1 }] }),
    );
    expect(text).toContain(`run ${run.info.run_id} belongs to a task attempt (worker:w@h:1)`);
    expect(writes()).toBe(before);
    expect(run.info.status).toBe('RUNNING');
  });
});
