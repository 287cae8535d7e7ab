/**
 * `createServer(deps)`: one MCP server for one session (a stdio connection or an HTTP session).
 * It registers the tools (only read-only ones in read-only mode; the task tools when there is a
 * task queue), resources and prompts, and its `close()` ends the runs the session started, KILLED,
 * saying the client went away.
 */
import { randomUUID } from 'node:crypto';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { Logger } from '../log.js';
import type { MlflowClient } from '../mlflow/client.js';
import type { McpSettings, ReviewStoreApi, TaskQueueApi, ToolContext } from './context.js';
import { type PromptTemplate, registerPrompts } from './prompts.js';
import { registerResources } from './resources.js';
import type { McpRunRegistry } from './runs.js';
import type { ToolDefinition } from './tools/define.js';
import { mlflowTools, reviewTools, taskTools } from './tools/index.js';

export interface ServerDeps {
  client: MlflowClient;
  runs: McpRunRegistry;
  settings: McpSettings;
  logger: Logger;
  prompts: PromptTemplate[];
  version: string;
  /** The task queue: with one, the task tools are listed after the MLflow ones. */
  tasks?: TaskQueueApi;
  /** The review store: with one, the review tools are listed last. */
  reviews?: ReviewStoreApi;
  /** Extra tools appended to the others. */
  extraTools?: ToolDefinition[];
  /** Session id; a fresh one is made when omitted. */
  sessionKey?: string;
}

const INSTRUCTIONS =
  'runwarden: MLflow tracking that cannot leave a mess. Typical flow: get_or_create_experiment → start_run → ' +
  'log_params / log_metrics / log_artifact → end_run (always) → register_model. Runs you forget are closed KILLED ' +
  'when their lease expires (a run outlives an HTTP session: continue it from a new one) or when a stdio ' +
  'client disconnects. Prompts: tracked-experiment, compare-and-choose.';
const TASK_INSTRUCTIONS =
  ' Queued training: list_task_templates → enqueue_task → wait_for_task (again while finished is false); ' +
  'get_task / list_tasks / cancel_task.';
const READ_ONLY_TASK_INSTRUCTIONS = ' Queued tasks: list_tasks, get_task, wait_for_task.';
const REVIEW_INSTRUCTIONS =
  ' Judging: list_pending_reviews → get_review → submit_review (once per item); get_model_history. Prompts for ' +
  'roles: plan-experiments, review-results.';
const READ_ONLY_REVIEW_INSTRUCTIONS = ' Reviews: list_pending_reviews, get_review, get_model_history.';

export function createServer(deps: ServerDeps): {
  server: McpServer;
  sessionKey: string;
  close: (reason?: string) => Promise<void>;
} {
  const sessionKey = deps.sessionKey ?? randomUUID();
  const server = new McpServer(
    { name: 'runwarden', title: 'runwarden (MLflow)', version: deps.version },
    {
      capabilities: { logging: {} },
      instructions:
        INSTRUCTIONS +
        (deps.tasks ? (deps.settings.readOnly ? READ_ONLY_TASK_INSTRUCTIONS : TASK_INSTRUCTIONS) : '') +
        (deps.reviews ? (deps.settings.readOnly ? READ_ONLY_REVIEW_INSTRUCTIONS : REVIEW_INSTRUCTIONS) : ''),
    },
  );
  const ctx: ToolContext = {
    client: deps.client,
    runs: deps.runs,
    settings: deps.settings,
    logger: deps.logger.child({ session: sessionKey }),
    tasks: deps.tasks,
    reviews: deps.reviews,
    sessionKey,
  };
  const listed = [...mlflowTools, ...(deps.tasks ? taskTools : []), ...(deps.reviews ? reviewTools : [])];
  for (const tool of [...listed, ...(deps.extraTools ?? [])]) {
    if (deps.settings.readOnly && tool.mutates) continue;
    tool.register(server, ctx);
  }
  registerResources(server, deps.client);
  registerPrompts(server, deps.prompts);
  let closed = false;
  const close = async (reason = 'the MCP client disconnected without calling end_run') => {
    if (closed) return;
    closed = true;
    // Leases decide: the session's runs are flushed and left to their lease (see McpRunRegistry).
    const n = await deps.runs.closeSession(sessionKey);
    if (n) ctx.logger.info({ runs: n, reason }, 'session closed with runs still open under their lease');
    await server.close().catch(() => undefined);
  };
  return { server, sessionKey, close };
}
