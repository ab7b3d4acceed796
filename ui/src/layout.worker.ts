// Lays out a graph with dagre off the main thread, so a large lineage never freezes the page.
import dagre from "@dagrejs/dagre";
import type { LayoutRequest, LayoutResult } from "./layout";

// Up to DAGRE_UP_TO nodes, dagre lays the graph out, with groups drawn as boxes (its
// compound layout) when it manages (it cannot always route an edge that crosses clusters;
// then flat). dagre's cost grows with the edges' length in ranks, and a lineage of
// thousands of assets takes it minutes, so larger graphs get `layered`: ranks by longest
// path, a few barycentre sweeps to order each rank, straight edges, each group a band of
// its own with its box around it. Linear per sweep: a 5,000-asset graph lays out in well under a second.
const DAGRE_UP_TO = 300;

self.onmessage = (event: MessageEvent<LayoutRequest>) => {
  const { nodes } = event.data;
  let result: LayoutResult | null = null;
  if (nodes.length <= DAGRE_UP_TO) {
    if (nodes.some((n) => n.group)) {
      try {
        result = run(event.data, true);
      } catch {
        result = null;
      }
    }
    result ??= run(event.data, false);
  } else result = layered(event.data);
  (self as unknown as Worker).postMessage(result);
};

const RANK_GAP = 60;
const NODE_GAP = 18;
const MARGIN = 20;
const GROUP_LABEL = 30;
const GROUP_PAD = 12;
const GROUP_GAP = 40;

function layered(request: LayoutRequest): LayoutResult {
  const { nodes, edges, width, height } = request;
  const index = new Map(nodes.map((n, i) => [n.id, i]));
  const parents: number[][] = nodes.map(() => []);
  const children: number[][] = nodes.map(() => []);
  for (const [from, to] of edges) {
    const a = index.get(from);
    const b = index.get(to);
    if (a === undefined || b === undefined || a === b) continue;
    children[a].push(b);
    parents[b].push(a);
  }
  // Ranks: longest path from a source (Kahn's order; nodes on a cycle keep rank 0).
  const rank = new Array<number>(nodes.length).fill(0);
  const waiting = parents.map((p) => p.length);
  const queue = waiting.flatMap((w, i) => (w === 0 ? [i] : []));
  for (let head = 0; head < queue.length; head++) {
    const v = queue[head];
    for (const c of children[v]) {
      rank[c] = Math.max(rank[c], rank[v] + 1);
      if (--waiting[c] === 0) queue.push(c);
    }
  }
  // Groups are horizontal bands, upstream groups (lower mean rank) on top: each rank of a
  // group is a column inside its band, so a group's box holds its nodes and nothing else.
  const groupNames = [...new Set(nodes.map((n) => n.group ?? ""))];
  const meanRank = new Map(groupNames.map((g) => [g, { sum: 0, n: 0 }]));
  nodes.forEach((n, i) => {
    const m = meanRank.get(n.group ?? "")!;
    m.sum += rank[i];
    m.n += 1;
  });
  const mean = (g: string) => meanRank.get(g)!.sum / meanRank.get(g)!.n;
  groupNames.sort((a, b) => mean(a) - mean(b) || a.localeCompare(b));
  const band = new Map(groupNames.map((g, i) => [g, i]));
  const bandOf = nodes.map((n) => band.get(n.group ?? "")!);

  const layers: number[][] = [];
  for (let i = 0; i < nodes.length; i++) (layers[rank[i]] ??= []).push(i);
  const pos = new Float64Array(nodes.length);
  const place = () => layers.forEach((layer) => layer.forEach((v, i) => (pos[v] = i)));
  layers.forEach((layer) => layer?.sort((a, b) => bandOf[a] - bandOf[b]));
  place();
  // Barycentre sweeps order each rank; a node never leaves its group's band.
  const sweep = (layer: number[], next: number[][]) => {
    const key = new Map<number, number>();
    for (const v of layer) {
      const ns = next[v];
      key.set(v, ns.length ? ns.reduce((sum, n) => sum + pos[n], 0) / ns.length : pos[v]);
    }
    layer.sort((a, b) => bandOf[a] - bandOf[b] || key.get(a)! - key.get(b)!);
    layer.forEach((v, i) => (pos[v] = i));
  };
  for (let round = 0; round < 4; round++) {
    for (let r = 1; r < layers.length; r++) if (layers[r]) sweep(layers[r], parents);
    for (let r = layers.length - 2; r >= 0; r--) if (layers[r]) sweep(layers[r], children);
  }
  // Each band is as tall as its group's fullest rank.
  const rows = groupNames.map(() => 0);
  const counts = layers.map((layer) => {
    const c = groupNames.map(() => 0);
    layer?.forEach((v) => c[bandOf[v]]++);
    c.forEach((k, b) => (rows[b] = Math.max(rows[b], k)));
    return c;
  });
  const grouped = nodes.some((n) => n.group);
  const step = height + NODE_GAP;
  const label = grouped ? GROUP_LABEL : 0;
  const top: number[] = [];
  let y = MARGIN;
  rows.forEach((r, b) => {
    top[b] = y + label;
    y += label + r * step - NODE_GAP + (grouped ? GROUP_GAP : NODE_GAP);
  });
  const result: LayoutResult = {
    nodes: {},
    edges: [],
    groups: [],
    width: MARGIN * 2 + layers.length * (width + RANK_GAP) - RANK_GAP + (grouped ? 2 * GROUP_PAD : 0),
    height: y - (grouped ? GROUP_GAP : NODE_GAP) + MARGIN,
  };
  const x0 = MARGIN + (grouped ? GROUP_PAD : 0);
  const spans = groupNames.map(() => ({ first: Infinity, last: -Infinity }));
  layers.forEach((layer, r) => {
    const seen = groupNames.map(() => 0);
    layer?.forEach((v) => {
      const b = bandOf[v];
      const offset = ((rows[b] - counts[r][b]) * step) / 2;
      result.nodes[nodes[v].id] = { x: x0 + r * (width + RANK_GAP), y: top[b] + offset + seen[b]++ * step };
      spans[b].first = Math.min(spans[b].first, r);
      spans[b].last = Math.max(spans[b].last, r);
    });
  });
  if (grouped) {
    groupNames.forEach((name, b) => {
      const { first, last } = spans[b];
      result.groups.push({
        name: name || "default",
        x: x0 + first * (width + RANK_GAP) - GROUP_PAD,
        y: top[b] - label,
        w: (last - first) * (width + RANK_GAP) + width + 2 * GROUP_PAD,
        h: label + rows[b] * step - NODE_GAP + GROUP_PAD,
      });
    });
  }
  for (let a = 0; a < nodes.length; a++) {
    const pa = result.nodes[nodes[a].id];
    for (const b of children[a]) {
      const pb = result.nodes[nodes[b].id];
      result.edges.push({
        from: nodes[a].id,
        to: nodes[b].id,
        points: [
          [pa.x + width, pa.y + height / 2],
          [pb.x, pb.y + height / 2],
        ],
      });
    }
  }
  return result;
}

function run(request: LayoutRequest, compound: boolean): LayoutResult {
  const { nodes, edges, width, height } = request;
  const g = new dagre.graphlib.Graph({ compound, multigraph: false });
  g.setGraph({ rankdir: "LR", nodesep: 18, ranksep: 60, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(() => ({}));
  const groups = new Set<string>();
  for (const n of nodes) {
    g.setNode(n.id, { width, height });
    if (compound && n.group) {
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
  return result;
}
