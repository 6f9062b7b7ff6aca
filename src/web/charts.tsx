/**
 * Small server-rendered SVG charts (no script): a line chart of daily series and a horizontal bar chart. Each
 * has a text title and description for screen readers; the pages put the same figures in a table beside it.
 * Colours come from the stylesheet (`.chart-s0` ...), so they follow light and dark mode.
 */

export interface Series {
  name: string;
  values: number[];
}

const W = 640;
const H = 200;
const PAD = { left: 40, right: 10, top: 10, bottom: 28 };

/** A line per series over `labels` (days), with a y axis from 0 to the largest value. */
export function LineChart(props: { title: string; labels: string[]; series: Series[] }) {
  const max = Math.max(1, ...props.series.flatMap((s) => s.values));
  const n = Math.max(1, props.labels.length - 1);
  const x = (i: number) => PAD.left + ((W - PAD.left - PAD.right) * i) / n;
  const y = (v: number) => H - PAD.bottom - ((H - PAD.top - PAD.bottom) * v) / max;
  const desc = props.series.map((s) => `${s.name}: ${s.values.reduce((a, b) => a + b, 0)} in all`).join('; ');
  const tick = Math.max(1, Math.ceil(props.labels.length / 6));
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${H}`} role="img" width="100%" preserveAspectRatio="none">
        <title safe>{props.title}</title>
        <desc safe>{desc}</desc>
        <line class="chart-axis" x1={PAD.left} y1={H - PAD.bottom} x2={W - PAD.right} y2={H - PAD.bottom} />
        <line class="chart-axis" x1={PAD.left} y1={PAD.top} x2={PAD.left} y2={H - PAD.bottom} />
        <text class="chart-label" x={PAD.left - 4} y={PAD.top + 8} text-anchor="end">
          {String(max)}
        </text>
        <text class="chart-label" x={PAD.left - 4} y={H - PAD.bottom} text-anchor="end">
          0
        </text>
        {props.labels.map((label, i) =>
          i % tick === 0 ? (
            <text class="chart-label" x={x(i)} y={H - 8} text-anchor="middle" safe>
              {label.slice(5)}
            </text>
          ) : (
            ''
          ),
        )}
        {props.series.map((s, k) => (
          <polyline
            class={`chart-line chart-s${k % 6}`}
            points={s.values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(' ')}
          />
        ))}
      </svg>
      <figcaption>
        <span safe>{props.title}</span>
        {props.series.map((s, k) => (
          <span class={`chart-key chart-s${k % 6}`} safe>
            {s.name}
          </span>
        ))}
      </figcaption>
    </figure>
  );
}

/** One bar per row, longest first. */
export function BarChart(props: { title: string; rows: Array<{ label: string; value: number }> }) {
  const max = Math.max(1, ...props.rows.map((r) => r.value));
  const rowH = 22;
  const height = Math.max(rowH, props.rows.length * rowH) + 4;
  const labelW = 200;
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${height}`} role="img" width="100%">
        <title safe>{props.title}</title>
        <desc safe>{props.rows.map((r) => `${r.label}: ${r.value}`).join('; ')}</desc>
        {props.rows.map((r, i) => (
          <g>
            <text class="chart-label" x={labelW - 6} y={i * rowH + 15} text-anchor="end" safe>
              {r.label}
            </text>
            <rect
              class="chart-bar chart-s0"
              x={labelW}
              y={i * rowH + 3}
              height={rowH - 6}
              width={Math.max(1, ((W - labelW - 50) * r.value) / max).toFixed(1)}
            />
            <text class="chart-label" x={labelW + ((W - labelW - 50) * r.value) / max + 6} y={i * rowH + 15}>
              {String(r.value)}
            </text>
          </g>
        ))}
      </svg>
      <figcaption safe>{props.title}</figcaption>
    </figure>
  );
}
