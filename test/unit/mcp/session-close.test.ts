// Closing an MCP session and shutting the server down: a closed session flushes its runs and ends
// none (leases decide); shutdown ends KILLED only the runs this server started and still owns,
// re-read first, and never re-closes a run someone else ended.
import { describe, expect, it } from 'vitest';
import { baseSettings, openSession, tagsOf } from './harness.js';
import { fake, logBatchesFor, ok, open, s, startRun, tmp, useToolSessions, writes } from './tool-session.js';

useToolSessions();

describe('session close', () => {
  it('close(): the session ends none of its runs; they stay RUNNING under their lease', async () => {
    const open1 = await startRun({ run_name: 'open-1' });
    const open2 = await startRun({ run_name: 'open-2' });
    const updatesBefore = fake.bodies('runs/update').length;
    await s.close('client went away');
    expect(fake.bodies('runs/update').length).toBe(updatesBefore);
    for (const id of [open1, open2]) expect(fake.runs.get(id)!.info.status).toBe('RUNNING');
    expect(s.runs.openFor(s.sessionKey)).toEqual([]);
  });

  it('close(): a run the session left open is continued from another session of the same server', async () => {
    const runId = await startRun();
    await s.close('client went away');
    // A new session on the same server process (same run registry) writes to the same handle.
    const handle = await s.runs.get(runId);
    await handle.logMetric('loss', 0.5, { step: 1 });
    await handle.flush();
    expect(fake.runs.get(runId)!.info.status).toBe('RUNNING');
    expect(fake.runs.get(runId)!.history).toEqual([expect.objectContaining({ key: 'loss', value: 0.5 })]);
  });

  it('close(): a second close does nothing more', async () => {
    await startRun();
    await s.close();
    const n = fake.requests.length;
    await s.close();
    expect(fake.requests.length).toBe(n);
  });

  it('close(): buffered metrics are flushed, and the run is left RUNNING', async () => {
    const runId = await startRun();
    // Logged through the registry's handle without flushing, as if a call were cut short.
    const handle = await s.runs.get(runId);
    await handle.logMetric('loss', 0.25, { step: 7 });
    await s.close();
    expect(fake.runs.get(runId)!.history).toEqual([
      expect.objectContaining({ key: 'loss', value: 0.25, step: 7 }),
    ]);
    expect(fake.runs.get(runId)!.info.status).toBe('RUNNING');
  });
});

describe('server shutdown', () => {
  it('shutdown: the runs this server started and still owns are ended KILLED with the reason; ended and foreign runs are not', async () => {
    const open1 = await startRun({ run_name: 'open-1' });
    const open2 = await startRun({ run_name: 'open-2' });
    const ended = await startRun({ run_name: 'ended' });
    ok(await s.call('end_run', { run_id: ended }), 'end_run');
    // A run another server (another runtime with its own owner id) started, adopted here by a call.
    const other = await open({ owner: 'mcp:test:other-nonce' });
    const foreign = await startRun({ run_name: 'foreign' }, other);
    ok(await s.call('log_metrics', { run_id: foreign, metrics: [{ key: 'x', value: 1 }] }), 'log_metrics');
    const updatesBefore = fake.bodies('runs/update').length;

    const r = await s.runs.shutdown('the MCP client disconnected', 5_000);

    expect(r).toMatchObject({ closed: 2, failed: 0 });
    const updates = fake.bodies<{ run_id: string; status: string }>('runs/update').slice(updatesBefore);
    expect(updates.map((u) => [u.run_id, u.status]).sort()).toEqual(
      [
        [open1, 'KILLED'],
        [open2, 'KILLED'],
      ].sort(),
    );
    for (const id of [open1, open2]) {
      const closing = logBatchesFor(id)
        .map(tagsOf)
        .find((t) => t['runwarden.close_reason']);
      expect(closing?.['runwarden.close_reason']).toBe('the MCP client disconnected');
      expect(closing?.['runwarden.closed_by']).toBe('mcp-server');
    }
    expect(fake.runs.get(ended)!.info.status).toBe('FINISHED');
    expect(fake.runs.get(foreign)!.info.status).toBe('RUNNING');
  });

  it('shutdown: a run the reaper already closed is forgotten, not closed again over its status and reason', async () => {
    const other = await openSession(baseSettings(tmp.dir), 'closing-session');
    const runId = await startRun({}, other);
    const run = fake.runs.get(runId)!;
    run.info.status = 'FAILED';
    run.info.end_time = 12_345;
    run.tags.set('runwarden.closed_by', 'reaper');
    run.tags.set('runwarden.close_reason', 'lease expired');
    const before = writes();
    await other.runs.shutdown('test over', 5_000);
    expect(writes()).toBe(before);
    expect(run.info.status).toBe('FAILED');
    expect(run.info.end_time).toBe(12_345);
    expect(run.tags.get('runwarden.close_reason')).toBe('lease expired');
    await other.close();
  });

  it('shutdown: a run that another process took over (owner tag changed) is left RUNNING', async () => {
    const runId = await startRun();
    fake.runs.get(runId)!.tags.set('runwarden.owner', 'mcp:someone-else:1234');
    const r = await s.runs.shutdown('stopping', 5_000);
    expect(r).toMatchObject({ closed: 0, released: 1 });
    expect(fake.runs.get(runId)!.info.status).toBe('RUNNING');
  });
});
