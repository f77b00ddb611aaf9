import { useMemo, type KeyboardEvent } from 'react';
import type { TopologyOut } from '../api/client';

const W = 800;
const H = 460;
const PAD = 28;

/** Link load as a colour: green when idle, amber, red when full. */
export function loadColour(utilisation: number): string {
  const u = Math.max(0, Math.min(1, utilisation));
  return `hsl(${Math.round(140 - 140 * u)} 70% ${u > 0.01 ? 42 : 55}%)`;
}

/** The market's network on an equirectangular projection: links coloured by utilisation, routers with
 *  compute marked, the chosen SRv6 path highlighted; routers are buttons when `onPick` is given. */
export function NetworkMap({
  topology,
  path = [],
  selected,
  onPick,
  marked = [],
  title,
}: {
  topology: TopologyOut;
  path?: string[];
  selected?: string;
  onPick?: (routerName: string) => void;
  marked?: string[];
  title: string;
}) {
  const project = useMemo(() => {
    const lats = topology.routers.map((r) => r.latitude);
    const lons = topology.routers.map((r) => r.longitude);
    const [minLat, maxLat, minLon, maxLon] = [Math.min(...lats), Math.max(...lats), Math.min(...lons), Math.max(...lons)];
    const k = Math.cos((((minLat + maxLat) / 2) * Math.PI) / 180); // keeps shapes right at this latitude
    const spanX = Math.max((maxLon - minLon) * k, 1e-6);
    const spanY = Math.max(maxLat - minLat, 1e-6);
    const scale = Math.min((W - 2 * PAD) / spanX, (H - 2 * PAD) / spanY);
    const offX = (W - spanX * scale) / 2;
    const offY = (H - spanY * scale) / 2;
    return (lat: number, lon: number) => [offX + (lon - minLon) * k * scale, offY + (maxLat - lat) * scale] as const;
  }, [topology]);

  const points = useMemo(() => topology.routers.map((r) => project(r.latitude, r.longitude)), [topology, project]);
  const byName = useMemo(() => new Map(topology.routers.map((r) => [r.name, r.index])), [topology]);
  const pathIdx = path.map((n) => byName.get(n)).filter((i): i is number => i !== undefined);
  const onPath = new Set(pathIdx);
  const markedSet = new Set(marked);
  const key = (e: KeyboardEvent, name: string) => {
    if (e.key === 'Enter' || e.key === ' ') {
      e.preventDefault();
      onPick?.(name);
    }
  };

  return (
    <figure className="map">
      <svg viewBox={`0 0 ${W} ${H}`} role="group" aria-label={title}>
        <title>{title}</title>
        <rect x="0" y="0" width={W} height={H} rx="10" className="map-bg" />
        {topology.links.map((l, i) => {
          const [x1, y1] = points[l.a];
          const [x2, y2] = points[l.b];
          const u = l.capacity_gbps > 0 ? (l.capacity_gbps - l.free_gbps) / l.capacity_gbps : 0;
          return (
            <line key={i} x1={x1} y1={y1} x2={x2} y2={y2} stroke={loadColour(u)} strokeWidth={1.5 + 3 * u} strokeLinecap="round">
              <title>
                {topology.routers[l.a].label} – {topology.routers[l.b].label}: {l.latency_ms.toFixed(1)} ms,{' '}
                {(l.capacity_gbps - l.free_gbps).toFixed(2)} of {l.capacity_gbps.toFixed(2)} Gbps used ({Math.round(u * 100)}%)
              </title>
            </line>
          );
        })}
        {pathIdx.length > 1 && (
          <polyline
            data-testid="map-path"
            points={pathIdx.map((i) => points[i].join(',')).join(' ')}
            className="map-path"
            fill="none"
          />
        )}
        {topology.routers.map((r, i) => {
          const [x, y] = points[i];
          const isSel = r.name === selected;
          const show = isSel || onPath.has(i) || markedSet.has(r.name);
          const cls = `router${isSel ? ' selected' : ''}${onPath.has(i) ? ' on-path' : ''}${markedSet.has(r.name) ? ' marked' : ''}`;
          return (
            <g
              key={r.name}
              className={cls}
              transform={`translate(${x},${y})`}
              {...(onPick
                ? {
                    role: 'button',
                    tabIndex: 0,
                    'aria-label': `${r.label} (${r.operator})`,
                    'aria-pressed': isSel,
                    onClick: () => onPick(r.name),
                    onKeyDown: (e: KeyboardEvent) => key(e, r.name),
                  }
                : {})}
            >
              <title>{`${r.label} (${r.operator})${markedSet.has(r.name) ? ': compute attached' : ''}`}</title>
              <circle r={isSel ? 7 : markedSet.has(r.name) ? 6 : 4} />
              {markedSet.has(r.name) && <rect x={-3} y={-3} width={6} height={6} className="node-mark" />}
              {show && (
                <text x={9} y={4} className="router-label">
                  {r.label}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption className="legend">
        <span><i className="swatch" style={{ background: loadColour(0) }} /> idle link</span>
        <span><i className="swatch" style={{ background: loadColour(0.5) }} /> half used</span>
        <span><i className="swatch" style={{ background: loadColour(1) }} /> full</span>
        <span><i className="swatch path" /> chosen path</span>
        <span><i className="dot marked" /> router with compute</span>
        {onPick && <span className="muted">click or press Enter on a router to choose it</span>}
      </figcaption>
    </figure>
  );
}
