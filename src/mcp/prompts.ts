/**
 * MCP prompts, loaded from `prompts/*.md`: YAML front matter gives `name`, `title`, `description`
 * and `arguments` (name, description, required); the body is the template, with `{{argument}}`
 * placeholders filled from the client's arguments.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { parse } from 'yaml';
import { z } from 'zod';

export interface PromptTemplate {
  name: string;
  title?: string;
  description: string;
  arguments: { name: string; description: string; required: boolean }[];
  body: string;
}

const FrontMatter = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_-]*$/, 'lowercase name, e.g. tracked-experiment'),
  title: z.string().optional(),
  description: z.string().min(1),
  arguments: z
    .array(
      z.object({
        name: z.string().min(1),
        description: z.string().min(1),
        required: z.boolean().default(false),
      }),
    )
    .default([]),
});

export function parsePromptFile(file: string, text: string): PromptTemplate {
  const m = /^---\n([\s\S]*?)\n---\n?([\s\S]*)$/.exec(text);
  if (!m) throw new Error(`${file}: missing front matter (--- name/description/arguments ---)`);
  const fm = FrontMatter.safeParse(parse(m[1]!));
  if (!fm.success) {
    throw new Error(
      `${file}: front matter ${fm.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  }
  return { ...fm.data, body: m[2]!.trim() };
}

export function loadPrompts(dir: string): PromptTemplate[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.md') && f !== 'README.md')
    .sort()
    .map((f) => parsePromptFile(f, readFileSync(path.join(dir, f), 'utf8')));
}

export function fillTemplate(body: string, args: Record<string, string | undefined>): string {
  return body.replace(/\{\{\s*([a-z_][a-z0-9_]*)\s*\}\}/gi, (_, k: string) => args[k] ?? `(${k} not given)`);
}

export function registerPrompts(server: McpServer, prompts: PromptTemplate[]): void {
  for (const p of prompts) {
    const shape: Record<string, z.ZodType<string | undefined>> = {};
    for (const a of p.arguments)
      shape[a.name] = a.required
        ? z.string().describe(a.description)
        : z.string().optional().describe(a.description);
    server.registerPrompt(
      p.name,
      { title: p.title, description: p.description, argsSchema: shape as z.ZodRawShape },
      ((args: Record<string, string | undefined>) => ({
        description: p.description,
        messages: [{ role: 'user', content: { type: 'text', text: fillTemplate(p.body, args ?? {}) } }],
      })) as never,
    );
  }
}
