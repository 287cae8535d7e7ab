/**
 * Tool `log_artifact`: upload a local file or folder (only under the server's allowed roots), or
 * small inline content, to an open run. Uploads stream from disk and report progress when the
 * client sent a progress token.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { capForEcho, ValidationError } from '../../errors/index.js';
import type { ToolContext } from '../context.js';
import { defineTool } from './define.js';

async function insideAllowedRoots(localPath: string, ctx: ToolContext): Promise<string> {
  const abs = path.resolve(localPath);
  let real: string;
  try {
    real = await realpath(abs);
  } catch {
    throw new ValidationError(
      'local_path',
      `${capForEcho(abs)} does not exist (paths are resolved on the MCP server's machine)`,
    );
  }
  for (const root of ctx.settings.allowedRoots) {
    const r = await realpath(root).catch(() => root);
    if (real === r || real.startsWith(r + path.sep)) return real;
  }
  throw new ValidationError(
    'local_path',
    `${capForEcho(abs)} is outside the allowed roots (${ctx.settings.allowedRoots.join(', ')}); copy it there, pass content ` +
      'inline, or ask the user to add its folder to RUNWARDEN_ALLOWED_ROOTS',
  );
}

/** Standard base64 (RFC 4648 §4), padding optional; whitespace (line breaks) is ignored. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}(?:==)?|[A-Za-z0-9+/]{3}=?)?$/;

/**
 * Decode `content_base64` strictly: Node's decoder skips characters outside the alphabet and stops
 * at stray padding, so garbage would be stored as some other bytes. Refused instead, naming where.
 */
export function decodeBase64Strict(field: string, text: string): Buffer {
  const compact = text.replace(/[\t\n\r ]+/g, '');
  if (!BASE64.test(compact)) {
    const bad = /[^A-Za-z0-9+/=]/.exec(compact);
    const why = bad
      ? `has ${JSON.stringify(capForEcho(bad[0]))} at position ${bad.index}, outside the base64 alphabet (A-Z a-z 0-9 + /; base64url's - and _ are not accepted)`
      : `is not well-formed base64 (${compact.length} characters: '=' only at the end, and not a length of 4n+1)`;
    throw new ValidationError(field, `${why}; send standard base64, or the text itself as content`);
  }
  return Buffer.from(compact, 'base64');
}

export const logArtifactTool = defineTool({
  name: 'log_artifact',
  title: 'Log artifact',
  description:
    'Store a file or folder in an open run. Give local_path (a file or folder on the server machine, inside its ' +
    'allowed roots) or inline content/content_base64 (size-capped). Streams; reports progress.',
  input: {
    run_id: z.string().describe('Run id from start_run'),
    local_path: z.string().optional().describe('File or folder on the server machine (inside allowed roots)'),
    content: z
      .string()
      .optional()
      .describe('Inline UTF-8 text to store (needs artifact_path as the file path)'),
    content_base64: z
      .string()
      .optional()
      .describe('Inline bytes, base64 (needs artifact_path as the file path)'),
    artifact_path: z
      .string()
      .optional()
      .describe(
        'Run-relative destination: folder for local_path (default root), file path for inline content',
      ),
  },
  output: {
    run_id: z.string(),
    files: z.number(),
    bytes: z.number(),
    artifact_path: z.string(),
  },
  annotations: { readOnlyHint: false, destructiveHint: false, idempotentHint: true, openWorldHint: false },
  async run(args, ctx, extra) {
    const sources = [args.local_path, args.content, args.content_base64].filter((s) => s !== undefined);
    if (sources.length !== 1) {
      throw new ValidationError('local_path', 'give exactly one of local_path, content or content_base64');
    }
    const run = await ctx.runs.get(args.run_id);
    if (args.local_path !== undefined) {
      const real = await insideAllowedRoots(args.local_path, ctx);
      const isFile = (await stat(real)).isFile();
      const token = extra._meta?.progressToken;
      let lastSent = 0;
      const res = await run.logArtifact(real, args.artifact_path ?? '', {
        onProgress: (done, total) => {
          if (token === undefined || Date.now() - lastSent < 250) return;
          lastSent = Date.now();
          void extra
            .sendNotification({
              method: 'notifications/progress',
              params: { progressToken: token, progress: done, total, message: `${done} of ${total} bytes` },
            })
            .catch(() => undefined);
        },
      });
      const where = args.artifact_path ? `${args.artifact_path}/` : '';
      return {
        structured: {
          run_id: args.run_id,
          files: res.files,
          bytes: res.bytes,
          artifact_path: args.artifact_path ?? '',
        },
        text: `Stored ${isFile ? path.basename(real) : `${res.files} file(s)`} (${res.bytes} bytes) under ${where || 'the run root'} of run ${args.run_id}.`,
      };
    }
    if (!args.artifact_path) {
      throw new ValidationError('artifact_path', 'inline content needs a file path, e.g. "notes/summary.md"');
    }
    const bytes =
      args.content !== undefined
        ? Buffer.from(args.content, 'utf8')
        : decodeBase64Strict('content_base64', args.content_base64 ?? '');
    const cap = ctx.settings.maxInlineArtifactBytes;
    if (bytes.length > cap) {
      throw new ValidationError(
        args.content !== undefined ? 'content' : 'content_base64',
        `${bytes.length} bytes exceeds the inline cap of ${cap} bytes; write the file under an allowed root and pass local_path`,
      );
    }
    const res = await run.logText(bytes, args.artifact_path);
    return {
      structured: { run_id: args.run_id, files: 1, bytes: res.bytes, artifact_path: res.path },
      text: `Stored ${res.bytes} bytes at ${res.path} in run ${args.run_id}.`,
    };
  },
});
