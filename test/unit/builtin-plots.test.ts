// The loss-curve chart every built-in trainer draws (and other TypeScript code may reuse): a PNG
// with real axes and text, rendered headless with Vega and resvg.
import { Resvg } from '@resvg/resvg-js';
import { describe, expect, it } from 'vitest';
import { lineChartPng, lineChartSvg } from '../../src/runners/builtin/plots.js';

const series = [
  { name: 'train_loss', values: [1, 0.5, 0.3, Number.NaN] },
  { name: 'val_loss', values: [1.2, 0.7, 0.5, 0.55] },
];
const opts = { title: 'ridge: loss per alpha', xlabel: 'step', ylabel: 'MSE (standardised cases)' };

describe('lineChartPng', () => {
  it('lineChartSvg: the chart has its title, axis titles, tick labels and legend as text', async () => {
    const svg = await lineChartSvg(series, opts);
    for (const text of [
      'ridge: loss per alpha',
      'step',
      'MSE (standardised cases)',
      'train_loss',
      'val_loss',
      '0.5',
    ])
      expect(svg).toContain(`>${text}</text>`);
  });

  it('lineChartPng: a PNG twice the chart size by default, with a NaN point left out rather than failing', async () => {
    const png = await lineChartPng(series, opts);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    const svgWidth = new Resvg(await lineChartSvg(series, opts)).width;
    expect(png.readUInt32BE(16)).toBe(Math.round(svgWidth * 2));
  });
});
