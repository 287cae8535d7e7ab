/**
 * How a tool is declared: one `defineTool({...})` per file with a zod input shape (every field
 * described), an output shape, explicit annotations and a handler that returns structured content
 * plus a text mirror. Registration wraps the handler so the shared input rules (`boundary.ts`: ids,
 * names, well-formed Unicode) run before it, expected failures become `isError` results with a
 * recovery step (their text capped), and tools that write are hidden when the server is read-only.
 */
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import type { CallToolResult, ServerNotification, ServerRequest } from '@modelcontextprotocol/sdk/types.js';
import type { z } from 'zod';
import { capForEcho, ERROR_TEXT_MAX } from '../../errors/index.js';
import type { ToolContext } from '../context.js';
import { errorResult, type RecoveryHints, success } from '../results.js';
import { checkToolInput } from './boundary.js';

export type ToolExtra = RequestHandlerExtra<ServerRequest, ServerNotification>;

export interface Annotations {
  readOnlyHint: boolean;
  destructiveHint: boolean;
  idempotentHint: boolean;
  openWorldHint: boolean;
}

export interface ToolSpec<I extends z.ZodRawShape, O extends z.ZodRawShape> {
  name: string;
  title: string;
  description: string;
  input: I;
  output: O;
  annotations: Annotations;
  /** Recovery text for error codes, in this tool's terms. */
  hints?: RecoveryHints;
  run: (
    args: z.infer<z.ZodObject<I>>,
    ctx: ToolContext,
    extra: ToolExtra,
  ) => Promise<{ structured: z.infer<z.ZodObject<O>>; text: string }>;
}

export interface ToolDefinition {
  name: string;
  /** True when the tool changes anything (hidden in read-only mode). */
  mutates: boolean;
  register: (server: McpServer, ctx: ToolContext) => void;
}

export function defineTool<I extends z.ZodRawShape, O extends z.ZodRawShape>(
  spec: ToolSpec<I, O>,
): ToolDefinition {
  return {
    name: spec.name,
    mutates: !spec.annotations.readOnlyHint,
    register: (server, ctx) => {
      capSdkToolErrors(server);
      server.registerTool(
        spec.name,
        {
          title: spec.title,
          description: spec.description,
          inputSchema: spec.input,
          outputSchema: spec.output,
          annotations: spec.annotations,
        },
        (async (raw: unknown, extra: ToolExtra) => {
          try {
            // The SDK has already parsed the input against `spec.input`.
            const args = raw as z.infer<z.ZodObject<I>>;
            checkToolInput(args);
            const { structured, text } = await spec.run(args, ctx, extra);
            return success(structured as Record<string, unknown>, text);
          } catch (err) {
            return errorResult(err, spec.hints);
          }
        }) as never,
      );
    },
  };
}

/**
 * The SDK answers a schema failure itself, with an isError text listing every zod issue (10,000 bad
 * points in one log_metrics call: 369 KB). Its `createToolError` is the one place such texts are
 * made, so it is wrapped (once per server) to cap them like ours; without that method (another SDK
 * version) nothing changes.
 */
function capSdkToolErrors(server: McpServer): void {
  const target = server as unknown as { createToolError?: (message: string) => CallToolResult };
  const original = target.createToolError;
  if (typeof original !== 'function' || original.name === 'cappedToolError') return;
  target.createToolError = function cappedToolError(message: string) {
    return original.call(server, capForEcho(message, ERROR_TEXT_MAX));
  };
}
