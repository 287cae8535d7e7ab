/**
 * Tool results. Success: `structuredContent` matching the tool's outputSchema plus a short text
 * mirror. Expected failures: `isError` text that names what failed and the next step, chosen by
 * the error's code (never its message text). Every error text is bounded (`ERROR_TEXT_MAX`, 2,000
 * characters plus a `…(N more)` mark), whatever the input or MLflow's answer quoted.
 */
import type { CallToolResult } from '@modelcontextprotocol/sdk/types.js';
import { capForEcho, ERROR_TEXT_MAX, MlflowApiError, RunwardenError } from '../errors/index.js';

export function success(structured: Record<string, unknown>, text: string): CallToolResult {
  return { content: [{ type: 'text', text }], structuredContent: structured };
}

export function failure(text: string): CallToolResult {
  return { content: [{ type: 'text', text: capForEcho(text, ERROR_TEXT_MAX) }], isError: true };
}

/** Hints a tool can give for MLflow error codes in its own terms (e.g. bad filter syntax). */
export type RecoveryHints = Partial<Record<string, string>>;

/**
 * Turn an error into an isError result with a recovery step. Unknown errors are rethrown (the SDK
 * reports them), with their message capped first.
 */
export function errorResult(err: unknown, hints: RecoveryHints = {}): CallToolResult {
  if (err instanceof MlflowApiError) {
    const hint = hints[err.errorCode] ?? MLFLOW_HINTS[err.errorCode] ?? statusHint(err.status);
    return failure(`${err.serverMessage} (MLflow ${err.errorCode}, ${err.endpoint}). ${hint}`);
  }
  if (err instanceof RunwardenError) {
    const hint = hints[err.code] ?? CODE_HINTS[err.code] ?? '';
    return failure(hint ? `${err.message.replace(/[.\s]*$/, '.')} ${hint}` : err.message);
  }
  if (err instanceof Error && err.message.length > ERROR_TEXT_MAX)
    err.message = capForEcho(err.message, ERROR_TEXT_MAX);
  throw err;
}

const MLFLOW_HINTS: Record<string, string> = {
  RESOURCE_DOES_NOT_EXIST: 'Check the id or name: search_experiments and search_runs list what exists.',
  INVALID_PARAMETER_VALUE: 'Fix the argument MLflow names and call again.',
  RESOURCE_ALREADY_EXISTS: 'It exists already: read it instead of creating it.',
  PERMISSION_DENIED: 'The MLflow credentials of this server lack permission; ask an admin.',
  UNAUTHENTICATED: 'Set MLFLOW_TRACKING_TOKEN or MLFLOW_TRACKING_USERNAME/PASSWORD for this server.',
};

function statusHint(status: number): string {
  if (status >= 500 || status === 429) return 'MLflow is failing or overloaded; retry in a little while.';
  if (status === 404) return 'This MLflow server does not know that endpoint or object.';
  return 'Check the arguments and call again.';
}

const CODE_HINTS: Partial<Record<string, string>> = {
  MLFLOW_UNREACHABLE: 'Retry later, or ask the user to start MLflow (npm start brings up a local one).',
  VALIDATION_ERROR: 'Fix that field and call again.',
  RUN_CLOSED: 'Start a new run with start_run (parent_run_id links it to the old one).',
};
