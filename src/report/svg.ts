// Hand-rendered inline SVG charts for the report: line charts (time series, CDFs) and
// horizontal grouped bar charts. Pure string building, deterministic output, no scripts.

export const PALETTE = ['#1f6fb4', '#d1432f', '#2a9d48', '#8a55c4', '#e08a16', '#444444'];

export function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const f1 = (x: number) => {
  const r = Math.round(x * 10) / 10;
  return String(r === 0 ? 0 : r);
};

/** About `count` round tick values covering [0, max]. */
export function niceTicks(max: number, count = 5): number[] {
  if (!(max > 0)) return [0, 1];
  const raw = max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  const step = (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 2.5 ? 2.5 : norm <= 5 ? 5 : 10) * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Math.round(v / step) * step);
  if (out[out.length - 1] < max) out.push(out[out.length - 1] + step);
  return out;
}

function fmtTick(v: number): string {
  if (Math.abs(v) >= 1000) return String(Math.round(v));
  return String(Math.round(v * 100) / 100);
}

export interface LineSeries {
  name: string;
  color: string;
  xs: readonly number[];
  ys: readonly number[];
  /** Draw as a step function (value holds until the next point). */
  step?: boolean;
}

export interface LineChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  series: LineSeries[];
  xMax: number;
  yMax?: number;
  /** Label of an x tick value (default: the number). */
  xTick?: (v: number) => string;
  xTicks?: number[];
  width?: number;
  height?: number;
}

function legend(series: { name: string; color: string }[], x: number, y: number): string {
  let out = '';
  let dx = 0;
  for (const s of series) {
    out += `<rect x="${x + dx}" y="${y - 9}" width="14" height="4" fill="${s.color}"/>`;
    out += `<text x="${x + dx + 18}" y="${y - 4}" class="lg">${esc(s.name)}</text>`;
    dx += 30 + 7 * s.name.length;
  }
  return out;
}

export function lineChart(o: LineChartOptions): string {
  const W = o.width ?? 760;
  const H = o.height ?? 300;
  const m = { l: 64, r: 16, t: 34, b: 48 };
  const pw = W - m.l - m.r;
  const ph = H - m.t - m.b;
  let yMaxData = 0;
  for (const s of o.series) for (const y of s.ys) if (y > yMaxData) yMaxData = y;
  const yTicks = niceTicks(o.yMax ?? (yMaxData > 0 ? yMaxData : 1));
  const yMax = yTicks[yTicks.length - 1];
  const xMax = o.xMax > 0 ? o.xMax : 1;
  const xTicks = o.xTicks ?? niceTicks(xMax, 8).filter((v) => v <= xMax + 1e-9);
  const X = (x: number) => m.l + (Math.min(x, xMax) / xMax) * pw;
  const Y = (y: number) => m.t + ph - (Math.min(y, yMax) / yMax) * ph;
  let g = '';
  for (const v of yTicks) {
    g += `<line x1="${m.l}" x2="${m.l + pw}" y1="${f1(Y(v))}" y2="${f1(Y(v))}" class="grid"/>`;
    g += `<text x="${m.l - 6}" y="${f1(Y(v) + 4)}" class="tk" text-anchor="end">${esc(fmtTick(v))}</text>`;
  }
  for (const v of xTicks) {
    g += `<line x1="${f1(X(v))}" x2="${f1(X(v))}" y1="${m.t + ph}" y2="${m.t + ph + 4}" class="ax"/>`;
    g += `<text x="${f1(X(v))}" y="${m.t + ph + 17}" class="tk" text-anchor="middle">${esc(o.xTick ? o.xTick(v) : fmtTick(v))}</text>`;
  }
  g += `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" class="ax"/>`;
  g += `<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" class="ax"/>`;
  for (const s of o.series) {
    const pts: string[] = [];
    for (let i = 0; i < s.xs.length; i++) {
      if (s.xs[i] > xMax) {
        if (s.step && i > 0) pts.push(`${f1(X(xMax))},${f1(Y(s.ys[i - 1]))}`);
        break;
      }
      if (s.step && i > 0) pts.push(`${f1(X(s.xs[i]))},${f1(Y(s.ys[i - 1]))}`);
      pts.push(`${f1(X(s.xs[i]))},${f1(Y(s.ys[i]))}`);
    }
    if (pts.length > 0) {
      g += `<polyline fill="none" stroke="${s.color}" stroke-width="1.8" points="${pts.join(' ')}"><title>${esc(s.name)}</title></polyline>`;
    }
  }
  g += `<text x="${m.l + pw / 2}" y="${H - 8}" class="al" text-anchor="middle">${esc(o.xLabel)}</text>`;
  g += `<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" class="al" text-anchor="middle">${esc(o.yLabel)}</text>`;
  g += `<text x="${m.l}" y="16" class="ti">${esc(o.title)}</text>`;
  g += legend(o.series, m.l + pw - o.series.reduce((s, x) => s + 30 + 7 * x.name.length, 0), 30);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">${g}</svg>`;
}

export interface BarGroup {
  label: string;
  /** One value per series (null = nothing to show). */
  values: (number | null)[];
}

export interface BarChartOptions {
  title: string;
  xLabel: string;
  series: { name: string; color: string }[];
  groups: BarGroup[];
  xMax: number;
  /** Value label next to each bar. */
  fmt?: (v: number) => string;
  width?: number;
}

/** Horizontal grouped bars: one group per label, one bar per series. */
export function barChart(o: BarChartOptions): string {
  const W = o.width ?? 760;
  const labelW = Math.min(260, 12 + 6.6 * Math.max(8, ...o.groups.map((g) => g.label.length)));
  const m = { l: labelW, r: 56, t: 34, b: 44 };
  const bar = 11;
  const gap = 8;
  const groupH = o.series.length * bar + gap;
  const ph = Math.max(groupH, o.groups.length * groupH);
  const H = m.t + ph + m.b;
  const pw = W - m.l - m.r;
  const X = (v: number) => m.l + (Math.max(0, Math.min(v, o.xMax)) / o.xMax) * pw;
  const fmt = o.fmt ?? ((v: number) => fmtTick(v));
  let g = '';
  for (const v of niceTicks(o.xMax).filter((x) => x <= o.xMax + 1e-9)) {
    g += `<line x1="${f1(X(v))}" x2="${f1(X(v))}" y1="${m.t}" y2="${m.t + ph}" class="grid"/>`;
    g += `<text x="${f1(X(v))}" y="${m.t + ph + 16}" class="tk" text-anchor="middle">${esc(fmtTick(v))}</text>`;
  }
  o.groups.forEach((grp, gi) => {
    const y0 = m.t + gi * groupH + gap / 2;
    g += `<text x="${m.l - 8}" y="${f1(y0 + (o.series.length * bar) / 2 + 4)}" class="tk" text-anchor="end">${esc(grp.label)}</text>`;
    grp.values.forEach((v, si) => {
      const y = y0 + si * bar;
      const s = o.series[si];
      if (v === null) {
        g += `<text x="${m.l + 4}" y="${f1(y + bar - 2)}" class="na">n/a</text>`;
        return;
      }
      g += `<rect x="${m.l}" y="${f1(y)}" width="${f1(X(v) - m.l)}" height="${bar - 1}" fill="${s.color}"><title>${esc(`${grp.label} — ${s.name}: ${fmt(v)}`)}</title></rect>`;
      g += `<text x="${f1(X(v) + 4)}" y="${f1(y + bar - 2)}" class="bv">${esc(fmt(v))}</text>`;
    });
  });
  g += `<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" class="ax"/>`;
  g += `<text x="${m.l + pw / 2}" y="${H - 8}" class="al" text-anchor="middle">${esc(o.xLabel)}</text>`;
  g += `<text x="8" y="16" class="ti">${esc(o.title)}</text>`;
  g += legend(o.series, m.l + pw - o.series.reduce((s, x) => s + 30 + 7 * x.name.length, 0), 30);
  return `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="${esc(o.title)}">${g}</svg>`;
}
