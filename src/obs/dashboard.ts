/**
 * The queue dashboard: Bull Board over the tasks and reviews queues, as one node:http handler
 * mounted under a base path of `runwarden serve` (default `/admin/queues`). Bull Board's express
 * adapter is used because an express app is itself a `(req, res)` handler, so it mounts in the
 * server's plain node:http routing with no framework around it. The server checks Host, Origin and
 * the bearer token before calling it (the same checks as /mcp). Read-only by default: every queue
 * is registered with Bull Board's `readOnlyMode`, whose API then refuses retry, remove, promote,
 * clean, pause and add with 405, so even a page that got past the checks cannot change a job.
 */
import type http from 'node:http';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';

export const DASHBOARD_PATH = '/admin/queues';

export interface DashboardOptions {
  /** Queues shown, in this order (opened on the first request). */
  queues: () => Queue[];
  /** Refuse every change (retry, remove, promote, clean, pause, add); default true. */
  readOnly?: boolean;
  basePath?: string;
}

export type Handler = (req: http.IncomingMessage, res: http.ServerResponse) => void;

/** Whether `path` (no query) belongs to the dashboard mounted at `basePath`. */
export function isDashboardPath(path: string, basePath = DASHBOARD_PATH): boolean {
  return path === basePath || path.startsWith(`${basePath}/`);
}

/**
 * A handler for requests under the base path. The board is built on the first request, so the
 * queues (and their Redis connection) are opened only when someone looks.
 */
export function createDashboard(opts: DashboardOptions): Handler {
  const basePath = opts.basePath ?? DASHBOARD_PATH;
  let app: Handler | undefined;
  const build = (): Handler => {
    const adapter = new ExpressAdapter();
    adapter.setBasePath(basePath);
    createBullBoard({
      queues: opts.queues().map((q) => new BullMQAdapter(q, { readOnlyMode: opts.readOnly !== false })),
      serverAdapter: adapter,
      options: { uiConfig: { boardTitle: 'runwarden queues' } },
    });
    return adapter.getRouter() as Handler;
  };
  return (req, res) => {
    app ??= build();
    // Mounted like express's app.use(basePath, ...): the board sees paths relative to it.
    const url = req.url ?? '/';
    req.url = url.slice(basePath.length) || '/';
    if (!req.url.startsWith('/')) req.url = `/${req.url}`;
    app(req, res);
  };
}
