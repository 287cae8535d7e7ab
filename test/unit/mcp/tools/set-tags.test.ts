// set_tags: reserved keys are refused.
import { describe, expect, it } from 'vitest';
import { failed, fake, s, startRun, useToolSessions, writes } from '../tool-session.js';

useToolSessions();

describe('tools: failures carry a recovery step', () => {
  it('set_tags: a key under runwarden. is refused and nothing is written', async () => {
    const runId = await startRun();
    const before = writes();
    const text = failed(
      await s.call('set_tags', { run_id: runId, tags: { ok: 'x', 'runwarden.owner': 'me' } }),
    );
    expect(text).toContain("tags.runwarden.owner: keys starting with 'runwarden.' are managed by runwarden");
    expect(text).toContain('Fix that field and call again.');
    expect(writes()).toBe(before);
    expect(fake.runs.get(runId)!.tags.get('runwarden.owner')).toBe('mcp:test');
  });
});
