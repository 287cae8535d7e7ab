// Closing an MCP session: which runs it ends KILLED, which it leaves alone, and buffered points flushed first.
import { describe, expect, it } from 'vitest';
import { baseSettings, openSession, tagsOf } from './harness.js';
import { fake, logBatchesFor, ok, open, s, startRun, tmp, useToolSessions, writes } from './tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('session close: a run the reaper already closed KILLED is forgotten, not closed again over its status and reason', async () => {
    const other = await openSession(baseSettings(tmp.dir), 'closing-session');
    const runId = await startRun({}, other);
    const run = fake.runs.get(runId)!;
    run.info.status = 'FAILED';
    run.info.end_time = 12_345;
    run.tags.set('runwarden.closed_by', 'reaper');
    run.tags.set('runwarden.close_reason', 'lease expired');
    const before = writes();
    await other.close('test over');
    expect(writes()).toBe(before);
    expect(run.info.status).toBe('FAILED');
    expect(run.info.end_time).toBe(12_345);
    expect(run.tags.get('runwarden.close_reason')).toBe('lease expired');
  });

  it('session close: a run still RUNNING is ended KILLED with the session reason', async () => {
    const other = await openSession(baseSettings(tmp.dir), 'closing-session-2');
    const runId = await startRun({}, other);
    await other.close('client went away');
    expect(fake.runs.get(runId)!.info.status).toBe('KILLED');
    expect(fake.runs.get(runId)!.tags.get('runwarden.close_reason')).toBe('client went away');
  });
});

describe('session close', () => {
  it("close(): the session's open runs are ended KILLED with runwarden.close_reason saying the client disconnected", async () => {
    const open1 = await startRun({ run_name: 'open-1' });
    const open2 = await startRun({ run_name: 'open-2' });
    const ended = await startRun({ run_name: 'ended' });
    ok(await s.call('end_run', { run_id: ended }), 'end_run');
    // A run another session started is not this session's to close.
    const other = await open();
    const foreign = await startRun({ run_name: 'foreign' }, other);
    const updatesBefore = fake.bodies('runs/update').length;

    await s.close();

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
      expect(closing?.['runwarden.close_reason']).toContain('disconnected');
      expect(closing?.['runwarden.closed_by']).toBe('mcp-server');
      expect(fake.runs.get(id)!.info.status).toBe('KILLED');
    }
    expect(fake.runs.get(ended)!.info.status).toBe('FINISHED');
    expect(fake.runs.get(foreign)!.info.status).toBe('RUNNING');
    expect(s.runs.openFor(s.sessionKey)).toEqual([]);
  });

  it('close(): a second close does nothing more', async () => {
    await startRun();
    await s.close();
    const n = fake.requests.length;
    await s.close();
    expect(fake.requests.length).toBe(n);
  });

  it('close(): buffered metrics are flushed before the run is ended KILLED', async () => {
    const runId = await startRun();
    // Logged through the registry's handle without flushing, as if a call were cut short.
    const handle = await s.runs.get(runId);
    await handle.logMetric('loss', 0.25, { step: 7 });
    await s.close();
    expect(fake.runs.get(runId)!.history).toEqual([
      expect.objectContaining({ key: 'loss', value: 0.25, step: 7 }),
    ]);
    expect(fake.runs.get(runId)!.info.status).toBe('KILLED');
  });
});
