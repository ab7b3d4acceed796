import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { layout, type LayoutResult } from "./layout";

export type GraphNode = { id: string; group?: string };

type Props<N extends GraphNode> = {
  nodes: N[];
  edges: [string, string][];
  width: number;
  height: number;
  renderNode: (node: N) => ComponentChildren;
  highlighted?: Set<string>;
  /** The class of a node's box when drawn without detail (a large graph zoomed out). */
  nodeClass?: (node: N) => string;
  onClickNode?: (node: N, event: MouseEvent) => void;
  onBackground?: () => void;
};

/** Graphs with more nodes than this are drawn without text when zoomed out below
 * DETAIL_ZOOM, and their edges as one path: thousands of labelled SVG groups and
 * marker-ended paths take the browser seconds to paint. */
const LARGE = 300;
const DETAIL_ZOOM = 0.4;
const BATCH_EDGES = 1000;
/** Below this zoom a group's name stops growing (it would outgrow its box). */
const MIN_LABEL_K = 0.05;

/** A laid-out graph drawn as SVG, with zoom (wheel) and pan (drag). Only the nodes in view
 * are drawn. */
export function GraphView<N extends GraphNode>(props: Props<N>) {
  const { nodes, edges, width, height } = props;
  const [laid, setLaid] = useState<LayoutResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [view, setView] = useState({ x: 0, y: 0, k: 1 });
  const svg = useRef<SVGSVGElement>(null);
  const drag = useRef<{ x: number; y: number; vx: number; vy: number; moved: boolean } | null>(null);
  const shape = JSON.stringify([nodes.map((n) => [n.id, n.group ?? ""]), edges]);

  useEffect(() => {
    let live = true;
    setLaid(null);
    layout({ nodes: nodes.map((n) => ({ id: n.id, group: n.group })), edges, width, height }).then(
      (result) => {
        if (!live) return;
        const box = svg.current?.getBoundingClientRect();
        const fit = box && result.width > 0 ? Math.min(1, box.width / result.width, box.height / result.height) : 1;
        const k = Math.max(fit, 0.02);
        // Centred, or from the top-left corner when even the smallest zoom cannot fit it.
        const x = box ? Math.max(0, (box.width - result.width * k) / 2) : 0;
        const y = box ? Math.max(0, (box.height - result.height * k) / 2) : 0;
        setView({ x, y, k });
        setLaid(result);
      },
      (e: Error) => live && setError(e.message),
    );
    return () => void (live = false);
  }, [shape]);

  const onWheel = (e: WheelEvent) => {
    e.preventDefault();
    const box = svg.current!.getBoundingClientRect();
    const px = e.clientX - box.left;
    const py = e.clientY - box.top;
    setView((v) => {
      const k = Math.min(4, Math.max(0.02, v.k * Math.exp(-e.deltaY / 500)));
      return { k, x: px - ((px - v.x) * k) / v.k, y: py - ((py - v.y) * k) / v.k };
    });
  };
  const onDown = (e: PointerEvent) => {
    drag.current = { x: e.clientX, y: e.clientY, vx: view.x, vy: view.y, moved: false };
  };
  const onMove = (e: PointerEvent) => {
    const d = drag.current;
    if (!d) return;
    const dx = e.clientX - d.x;
    const dy = e.clientY - d.y;
    if (Math.abs(dx) + Math.abs(dy) > 3) d.moved = true;
    if (d.moved) setView((v) => ({ ...v, x: d.vx + dx, y: d.vy + dy }));
  };
  const onUp = (e: PointerEvent) => {
    const d = drag.current;
    drag.current = null;
    if (d && !d.moved && (e.target as Element) === svg.current) props.onBackground?.();
  };
  const clickNode = (n: N, e: MouseEvent) => {
    if (drag.current?.moved) return;
    props.onClickNode?.(n, e);
  };

  const byId = new Map(nodes.map((n) => [n.id, n]));
  const hl = props.highlighted;
  const detailed = nodes.length <= LARGE || view.k >= DETAIL_ZOOM;
  const box = svg.current?.getBoundingClientRect();
  const seen = box
    ? { x0: -view.x / view.k, y0: -view.y / view.k, x1: (box.width - view.x) / view.k, y1: (box.height - view.y) / view.k }
    : null;
  const inView = (p: { x: number; y: number }) =>
    !seen || (p.x + width >= seen.x0 && p.x <= seen.x1 && p.y + height >= seen.y0 && p.y <= seen.y1);
  const labelK = Math.min(1, Math.max(view.k, MIN_LABEL_K));
  const labelStyle = labelK < 1 ? { fontSize: `${13 / labelK}px` } : undefined;
  const batched = laid !== null && laid.edges.length > BATCH_EDGES;
  const pathOf = (e: LayoutResult["edges"][number]) => `M${e.points.map((p) => p.join(",")).join(" L")}`;
  return (
    <div class="graph">
      {error && <div class="error">Layout failed: {error}</div>}
      {!laid && !error && <div class="muted graph-status">Laying out {nodes.length} nodes…</div>}
      <svg
        ref={svg}
        class="graph-svg"
        data-drawn={laid ? "true" : "false"}
        onWheel={onWheel}
        onPointerDown={onDown}
        onPointerMove={onMove}
        onPointerUp={onUp}
        onPointerLeave={() => (drag.current = null)}
      >
        <defs>
          <marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto">
            <path d="M0,0 L10,5 L0,10 z" fill="#8a94a6" />
          </marker>
        </defs>
        {laid && (
          <g transform={`translate(${view.x},${view.y}) scale(${view.k})`}>
            {laid.groups.map((g) => (
              <g class="group-box" key={g.name} data-group={g.name}>
                <rect x={g.x} y={g.y} width={g.w} height={g.h} rx="8" />
                {/* Zoomed out, a group's name keeps its size on screen. */}
                <text x={g.x + 10 / labelK} y={g.y + 18 / labelK} style={labelStyle}>
                  {g.name}
                </text>
              </g>
            ))}
            {batched && (
              <path
                class="edge"
                d={laid.edges.filter((e) => !(hl && hl.has(e.from) && hl.has(e.to))).map(pathOf).join(" ")}
              />
            )}
            {laid.edges.filter((e) => !batched || (hl && hl.has(e.from) && hl.has(e.to))).map((e) => (
              <path
                key={`${e.from}->${e.to}`}
                class={`edge${hl && hl.has(e.from) && hl.has(e.to) ? " edge-hl" : ""}`}
                data-edge={`${e.from}->${e.to}`}
                d={pathOf(e)}
                marker-end={batched ? undefined : "url(#arrow)"}
              />
            ))}
            {nodes.map((n) => {
              const p = laid.nodes[n.id];
              if (!p || !inView(p)) return null;
              return (
                <g
                  key={n.id}
                  class={`node${hl?.has(n.id) ? " node-hl" : ""}`}
                  data-node={n.id}
                  data-group={n.group}
                  transform={`translate(${p.x},${p.y})`}
                  onClick={(e) => clickNode(byId.get(n.id)!, e as unknown as MouseEvent)}
                >
                  {detailed ? props.renderNode(n) : <rect width={width} height={height} rx="6" class={props.nodeClass?.(n) ?? ""} />}
                </g>
              );
            })}
          </g>
        )}
      </svg>
    </div>
  );
}
