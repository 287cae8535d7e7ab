/**
 * What a template says about reviewing its results, with the defaults filled in: the registered
 * model its approved runs become versions of (default: the template name), the alias a promotion
 * moves (default `champion`; the previous holder gets `previous-<alias>`), the policy gates and the
 * primary metric. A template that is gone (renamed or removed since the task ran) gives defaults.
 */
import type { RescoreDef, Template } from '../model/template.js';
import { loadTemplate } from '../queue/templates.js';
import { type Gates, gatesFor } from './policy.js';

export interface TemplateReview {
  modelName: string;
  alias: string;
  previousAlias: string;
  gates: Gates;
  primaryMetric?: { name: string; direction: 'min' | 'max' };
  /** Run-relative folder of the model (the attempt stores the template's model folder as `model`). */
  modelPath: string;
  /** Independent re-scoring of the candidate's ONNX model on a holdout (issue 10). */
  rescore?: RescoreDef;
}

export function templateReview(tasksDir: string, name: string): TemplateReview {
  let t: Template | undefined;
  try {
    t = loadTemplate(tasksDir, name);
  } catch {
    t = undefined;
  }
  const alias = t?.review?.alias ?? 'champion';
  return {
    modelName: t?.review?.model_name ?? name,
    alias,
    previousAlias: `previous-${alias}`,
    gates: gatesFor(t?.review?.policy, t?.primary_metric),
    primaryMetric: t?.primary_metric,
    modelPath: 'model',
    rescore: t?.review?.rescore,
  };
}
