// Lays out a graph with dagre off the main thread, so a large lineage never freezes the page.
import dagre from "@dagrejs/dagre";
import type { LayoutRequest, LayoutResult } from "./layout";

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const { nodes, edges, width, height } = event.data;
  const g = new dagre.graphlib.Graph({ compound: true, multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const groups = new Set<string>();
  for (const n of nodes) {
    g.setNode(n.id, { width, height });
    if (n.group) {
      const gid = `group:${n.group}`;
      if (!groups.has(gid)) {
        groups.add(gid);
        g.setNode(gid, { label: n.group, paddingTop: 28 });
      }
      g.setParent(n.id, gid);
    }
  }
  for (const [from, to] of edges) if (g.hasNode(from) && g.hasNode(to)) g.setEdge(from, to);
  dagre.layout(g);
  const result: LayoutResult = {
    nodes: {},
    edges: [],
    groups: [],
    width: g.graph().width ?? 0,
    height: g.graph().height ?? 0,
  };
  for (const n of nodes) {
    const p = g.node(n.id);
    result.nodes[n.id] = { x: p.x - width / 2, y: p.y - height / 2 };
  }
  for (const gid of groups) {
    const p = g.node(gid);
    result.groups.push({ name: gid.slice(6), x: p.x - p.width / 2, y: p.y - p.height / 2 - 14, w: p.width, h: p.height + 14 });
  }
  for (const e of g.edges()) {
    const points = g.edge(e).points ?? [];
    result.edges.push({ from: e.v, to: e.w, points: points.map((p: { x: number; y: number }) => [p.x, p.y] as [number, number]) });
  }
  (self as unknown as Worker).postMessage(result);
};
