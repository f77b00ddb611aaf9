/** A small SVG time series: a line (stepped for levels), dots, min/max labels on both axes. */
export function LineChart({
  points,
  title,
  format,
  step = false,
  colour = 'var(--accent)',
  yMin,
  yMax,
}: {
  points: { x: number; y: number }[];
  title: string;
  format: (y: number) => string;
  step?: boolean;
  colour?: string;
  yMin?: number;
  yMax?: number;
}) {
  const W = 560;
  const H = 200;
  const L = 64;
  const R = 12;
  const T = 12;
  const B = 28;
  if (points.length === 0) {
    return <p className="muted chart-empty">No data yet: {title.toLowerCase()} appears once the market trades.</p>;
  }
  const xs = points.map((p) => p.x);
  const ys = points.map((p) => p.y);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const lo = yMin ?? Math.min(...ys);
  const hi = yMax ?? Math.max(...ys);
  const [y0, y1] = lo === hi ? [lo - 1, hi + 1] : [lo, hi];
  const sx = (x: number) => L + (x1 === x0 ? (W - L - R) / 2 : ((x - x0) / (x1 - x0)) * (W - L - R));
  const sy = (y: number) => T + (1 - (y - y0) / (y1 - y0)) * (H - T - B);
  let d = '';
  points.forEach((p, i) => {
    if (i === 0) d += `M${sx(p.x)},${sy(p.y)}`;
    else if (step) d += `H${sx(p.x)}V${sy(p.y)}`;
    else d += `L${sx(p.x)},${sy(p.y)}`;
  });
  const time = (t: number) => new Date(t * 1000).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
  const last = points[points.length - 1];
  return (
    <svg className="chart" viewBox={`0 0 ${W} ${H}`} role="img" aria-label={`${title}: latest ${format(last.y)}, range ${format(lo)} to ${format(hi)}`}>
      <title>{title}</title>
      <line x1={L} y1={T} x2={L} y2={H - B} className="axis" />
      <line x1={L} y1={H - B} x2={W - R} y2={H - B} className="axis" />
      <line x1={L} y1={sy(y1)} x2={W - R} y2={sy(y1)} className="grid" />
      <text x={L - 6} y={sy(y1) + 4} textAnchor="end" className="tick">{format(y1)}</text>
      <text x={L - 6} y={sy(y0) + 4} textAnchor="end" className="tick">{format(y0)}</text>
      <text x={L} y={H - 8} className="tick">{time(x0)}</text>
      <text x={W - R} y={H - 8} textAnchor="end" className="tick">{time(x1)}</text>
      <path d={d} fill="none" stroke={colour} strokeWidth="2.5" strokeLinejoin="round" />
      {points.map((p, i) => (
        <circle key={i} cx={sx(p.x)} cy={sy(p.y)} r="3.5" fill={colour}>
          <title>{`${time(p.x)}: ${format(p.y)}`}</title>
        </circle>
      ))}
    </svg>
  );
}
