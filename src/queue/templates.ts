/**
 * Task templates: `tasks/<name>/task.yaml` plus scripts. Loading validates the YAML with zod (the
 * schema is src/model/template.ts); `resolveParams` checks a task's parameters against the
 * template's types and bounds (coercing CLI strings), naming the parameter and the allowed range
 * when one is off. Only registered templates can run: a task names one, it never carries a command.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { parse } from 'yaml';
import { RunwardenError, ValidationError } from '../errors/index.js';
import { type ParamDef, type ParamValue, type Template, TemplateSchema } from '../model/template.js';

// The template model (schema and types) lives in src/model/template.ts, below queue and runners.
export { type ParamDef, type ParamValue, type Template, TemplateSchema } from '../model/template.js';

/** Load one template; a bad task.yaml is an error naming the file and the field. */
export function loadTemplate(root: string, name: string): Template {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) {
    throw new ValidationError(
      'template',
      `'${name}' is not a template name (lowercase letters, digits and '-')`,
    );
  }
  const dir = path.join(root, name);
  const file = path.join(dir, 'task.yaml');
  if (!existsSync(file)) {
    const known = listTemplateNames(root);
    throw new ValidationError(
      'template',
      `no template '${name}'; registered templates: ${known.join(', ') || 'none'}`,
    );
  }
  const parsed = TemplateSchema.safeParse(parse(readFileSync(file, 'utf8')));
  if (!parsed.success) {
    const why = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new RunwardenError('CONFIG_ERROR', `${file}: ${why}`);
  }
  if (parsed.data.name !== name) {
    throw new RunwardenError(
      'CONFIG_ERROR',
      `${file}: name '${parsed.data.name}' must match its folder '${name}'`,
    );
  }
  return { ...parsed.data, dir, root };
}

export function listTemplateNames(root: string): string[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(path.join(root, d.name, 'task.yaml')))
    .map((d) => d.name)
    .sort();
}

export function listTemplates(root: string): Template[] {
  return listTemplateNames(root).map((n) => loadTemplate(root, n));
}

function coerce(name: string, def: ParamDef, raw: unknown): ParamValue {
  const field = `params.${name}`;
  switch (def.type) {
    case 'int':
    case 'float': {
      const n = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
      if (typeof n !== 'number' || !Number.isFinite(n))
        throw new ValidationError(field, `must be a number, got ${JSON.stringify(raw)}`);
      if (def.type === 'int' && !Number.isInteger(n))
        throw new ValidationError(field, `must be an integer, got ${n}`);
      if ((def.min !== undefined && n < def.min) || (def.max !== undefined && n > def.max)) {
        throw new ValidationError(
          field,
          `${n} is out of bounds; allowed ${def.min ?? '-∞'} to ${def.max ?? '∞'}`,
        );
      }
      return n;
    }
    case 'bool': {
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true' || raw === 'false') return raw === 'true';
      throw new ValidationError(field, `must be true or false, got ${JSON.stringify(raw)}`);
    }
    case 'string': {
      if (typeof raw !== 'string') throw new ValidationError(field, `must be a string, got ${typeof raw}`);
      if (raw.length > def.max_length)
        throw new ValidationError(field, `is ${raw.length} characters; at most ${def.max_length}`);
      return raw;
    }
    case 'enum': {
      if (typeof raw !== 'string' || !def.values.includes(raw)) {
        throw new ValidationError(
          field,
          `must be one of ${def.values.join(', ')}, got ${JSON.stringify(raw)}`,
        );
      }
      return raw;
    }
  }
}

/** Parameters checked against the template: unknown names refused, defaults filled, values coerced and bounded. */
export function resolveParams(t: Template, given: Record<string, unknown> = {}): Record<string, ParamValue> {
  for (const k of Object.keys(given)) {
    if (!(k in t.params)) {
      throw new ValidationError(
        `params.${k}`,
        `template '${t.name}' has no parameter '${k}'; it takes: ${Object.keys(t.params).join(', ') || 'none'}`,
      );
    }
  }
  const out: Record<string, ParamValue> = {};
  for (const [k, def] of Object.entries(t.params)) {
    const raw = given[k] ?? def.default;
    if (raw === undefined)
      throw new ValidationError(
        `params.${k}`,
        `required by template '${t.name}' (${def.description || def.type})`,
      );
    out[k] = coerce(k, def, raw);
  }
  return out;
}
