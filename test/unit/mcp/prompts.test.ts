// MCP prompts: listing, filling placeholders, refusing missing arguments.
import { describe, expect, it } from 'vitest';
import { s, useToolSessions } from './tool-session.js';

useToolSessions();

describe('prompts', () => {
  it('prompts/list has tracked-experiment and compare-and-choose with their arguments', async () => {
    const { prompts } = await s.mcp.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['compare-and-choose', 'tracked-experiment']);
    const tracked = prompts.find((p) => p.name === 'tracked-experiment')!;
    expect(tracked.title).toBe('Run a tracked experiment');
    expect(tracked.arguments).toEqual(
      expect.arrayContaining([expect.objectContaining({ name: 'experiment', required: true })]),
    );
  });

  it('prompts/get tracked-experiment fills {{experiment}} and says when an optional argument was not given', async () => {
    const res = await s.mcp.getPrompt({
      name: 'tracked-experiment',
      arguments: { experiment: 'weekly-cases/gru' },
    });
    const content = res.messages[0]!.content;
    expect(content.type).toBe('text');
    const text = content.type === 'text' ? content.text : '';
    expect(text).toContain('Track this work as an MLflow experiment named "weekly-cases/gru".');
    expect(text).toContain('Goal: (goal not given).');
    expect(text).not.toContain('{{');
  });

  it('prompts/get compare-and-choose fills every placeholder', async () => {
    const res = await s.mcp.getPrompt({
      name: 'compare-and-choose',
      arguments: { experiment: 'e1', metric: 'rmse', direction: 'min' },
    });
    const content = res.messages[0]!.content;
    const text = content.type === 'text' ? content.text : '';
    expect(text).toContain('experiment_names: ["e1"]');
    expect(text).toContain('metrics.rmse ASC');
    expect(text).not.toContain('{{');
  });

  it('prompts/get without a required argument is refused by the SDK', async () => {
    await expect(s.mcp.getPrompt({ name: 'tracked-experiment', arguments: {} })).rejects.toThrow(
      /Invalid arguments for prompt tracked-experiment/,
    );
  });
});
