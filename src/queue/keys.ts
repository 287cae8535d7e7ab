/**
 * Names in Redis: the BullMQ queue, the per-task record (runs per attempt, final state), the
 * durable cancel marker, and the pub/sub channels for cancel broadcasts and live task events.
 */
export const QUEUE_NAME = 'tasks';

export function keys(prefix: string) {
  return {
    /** BullMQ prefix (queue keys become `<prefix>:tasks:*`). */
    bullPrefix: prefix,
    task: (taskId: string) => `${prefix}:task:${taskId}`,
    /** Sorted set of task ids by enqueue time. */
    index: `${prefix}:tasks-index`,
    cancel: (taskId: string) => `${prefix}:cancel:${taskId}`,
    cancelChannel: `${prefix}:cancel`,
    events: (taskId: string) => `${prefix}:events:${taskId}`,
  };
}
export type Keys = ReturnType<typeof keys>;

/** How long task records and cancel markers are kept (30 days). */
export const RECORD_TTL_SECONDS = 30 * 86_400;
