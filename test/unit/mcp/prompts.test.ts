// MCP prompts: listing, filling placeholders, refusing missing arguments.
import { describe, expect, it } from 'vitest';
import { s, useToolSessions } from './tool-session.js';

useToolSessions();

describe('prompts', () => {
  it('prompts/list has tracked-experiment, compare-and-choose and the planner and judge roles with their arguments', async () => {
    const { prompts } = await s.mcp.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual([
      'compare-and-choose',
      'plan-experiments',
      'review-results',
      'tracked-experiment',
    ]);
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

  it('prompts/get plan-experiments and review-results fill every placeholder and name the tools each role uses', async () => {
    const text = async (name: string, args: Record<string, string>) => {
      const c = (await s.mcp.getPrompt({ name, arguments: args })).messages[0]!.content;
      return c.type === 'text' ? c.text : '';
    };
    const plan = await text('plan-experiments', { goal: 'lower composite', budget: '12' });
    expect(plan).toContain('Goal: lower composite.');
    expect(plan).toContain('Template: (template not given).');
    for (const step of ['list_task_templates', '`dry_run: true`', 'enqueue_task', 'wait_for_task', 'rework'])
      expect(plan).toContain(step);
    const judge = await text('review-results', { review_id: 'r-t-1' });
    for (const step of [
      'list_pending_reviews',
      'get_review',
      'champion',
      'submit_review',
      'get_model_history',
    ])
      expect(judge).toContain(step);
    expect(`${plan}${judge}`).not.toContain('{{');
  });

  it('prompts/get without a required argument is refused by the SDK', async () => {
    await expect(s.mcp.getPrompt({ name: 'tracked-experiment', arguments: {} })).rejects.toThrow(
      /Invalid arguments for prompt tracked-experiment/,
    );
  });
});
