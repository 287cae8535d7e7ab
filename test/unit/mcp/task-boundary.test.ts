// The shared input boundary on the six task tools: task ids, names and reasons with 1 MB strings,
// control characters or lone surrogates are refused naming the field, under the cap, before the
// task queue is touched.
import { fileURLToPath } from 'node:url';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { InMemoryTransport } from '@modelcontextprotocol/sdk/inMemory.js';
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/log.js';
import type { TaskQueueApi } from '../../../src/mcp/context.js';
import { McpRunRegistry } from '../../../src/mcp/runs.js';
import { createServer } from '../../../src/mcp/server.js';
import { createMlflowClient } from '../../../src/mlflow/client.js';
import { listTemplates } from '../../../src/queue/templates.js';

const TASKS_DIR = fileURLToPath(new URL('../../fixtures/tasks', import.meta.url));
const MB = 'x'.repeat(1_000_000);

/** A queue that lists the fixture templates and counts every other call (none should arrive). */
function countingQueue() {
  const calls: string[] = [];
  const queue = {
    templates: () => listTemplates(TASKS_DIR),
    enqueue: async () => {
      calls.push('enqueue');
      throw new Error('enqueue reached');
    },
    get: async () => {
      calls.push('get');
      return undefined;
    },
    list: async () => {
      calls.push('list');
      return [];
    },
    cancel: async () => {
      calls.push('cancel');
      throw new Error('cancel reached');
    },
  } as unknown as TaskQueueApi;
  return { queue, calls };
}

const closers: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const c of closers.splice(0)) await c();
});

async function open(tasks: TaskQueueApi) {
  const mlflow = createMlflowClient({ trackingUri: 'http://mlflow.test', retry: { maxRetries: 0 } });
  const created = createServer({
    client: mlflow,
    runs: new McpRunRegistry(mlflow, 900_000),
    settings: {
      readOnly: false,
      allowedRoots: [TASKS_DIR],
      maxInlineArtifactBytes: 1024,
      readArtifactMaxBytes: 64,
      leaseSeconds: 900,
      owner: 'mcp:test',
    },
    logger: silentLogger,
    prompts: [],
    version: '0.0.0-test',
    tasks,
  });
  const [clientTransport, serverTransport] = InMemoryTransport.createLinkedPair();
  await created.server.connect(serverTransport);
  const mcp = new Client({ name: 'runwarden-task-boundary', version: '0.0.0' });
  await mcp.connect(clientTransport);
  closers.push(async () => {
    await mcp.close();
    await created.close();
  });
  return async (name: string, args: Record<string, unknown>) => {
    const r = (await mcp.callTool({ name, arguments: args })) as CallToolResult;
    return { isError: r.isError, text: r.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n') };
  };
}

describe('task tools: the shared input boundary', () => {
  it.each([
    ['get_task', { task_id: MB }, 'task_id'],
    ['wait_for_task', { task_id: 't-1/../x' }, 'task_id'],
    ['cancel_task', { task_id: 't-1', reason: `half \ud800` }, 'reason'],
    ['enqueue_task', { template: 'quick', experiment: 'a\u0000b' }, 'experiment'],
    ['enqueue_task', { template: 'quick', run_name: 'r\nr' }, 'run_name'],
    ['enqueue_task', { template: MB }, 'template'],
    ['enqueue_task', { template: 'quick', params: { [`k\udc00`]: 1 } }, 'params.k'],
    ['list_task_templates', { name: `q\u0000` }, 'name'],
  ] as const)('%s: %j is refused naming %s, under 2 KB, and the queue is never called', async (name, args, field) => {
    const { queue, calls } = countingQueue();
    const call = await open(queue);
    const res = await call(name, args);
    expect(res.isError, res.text).toBe(true);
    expect(res.text.startsWith(`${field}`), res.text.slice(0, 200)).toBe(true);
    expect(res.text.length).toBeLessThanOrEqual(2_048);
    expect(calls).toEqual([]);
  });
});
