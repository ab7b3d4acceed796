import { useEffect, useMemo, useState } from "preact/hooks";
import { GraphView } from "../GraphView";
import { gql, subscribe } from "../gql";
import { navigate } from "../router";
import { select } from "../selection";
import { useLoad, when } from "../util";

type AssetNodeData = {
  id: string;
  assetKey: { path: string[] };
  groupName: string;
  description: string | null;
  kinds: string[];
  jobNames: string[];
  repositoryLocationName: string;
  dependencyKeys: { path: string[] }[];
  latestMaterialization: { timestamp: string; runId: string } | null;
  staleStatus: "FRESH" | "STALE" | "MISSING" | null;
  isMaterializable: boolean;
};

type Repo = { name: string; location: { name: string }; assetNodes: AssetNodeData[] };

type Asset = {
  id: string;
  group: string;
  data: AssetNodeData;
  repo: string;
  state: "fresh" | "stale" | "missing";
};

const QUERY = `{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
  assetNodes { id assetKey { path } groupName description kinds jobNames repositoryLocationName
    dependencyKeys { path } latestMaterialization { timestamp runId } staleStatus isMaterializable } } } } }`;

export const keyOf = (k: { path: string[] }) => k.path.join("/");

/** The server's stale status (code or upstream data versions changed since it was
 * materialized); without one: missing when never materialized, stale when a parent was
 * materialized after it. */
function states(assets: Map<string, AssetNodeData>): Map<string, Asset["state"]> {
  const out = new Map<string, Asset["state"]>();
  for (const [key, a] of assets) {
    if (a.staleStatus) {
      out.set(key, a.staleStatus.toLowerCase() as Asset["state"]);
      continue;
    }
    const mine = a.latestMaterialization ? Number(a.latestMaterialization.timestamp) : null;
    if (mine === null) out.set(key, "missing");
    else {
      const newer = a.dependencyKeys.some((d) => {
        const p = assets.get(keyOf(d))?.latestMaterialization;
        return p !== null && p !== undefined && Number(p.timestamp) > mine;
      });
      out.set(key, newer ? "stale" : "fresh");
    }
  }
  return out;
}

export function AssetsPage() {
  const { data, error, reload } = useLoad(() => gql<{ repositoriesOrError: { nodes?: Repo[] } }>(QUERY), []);
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [message, setMessage] = useState<string | null>(null);

  // A run that ends may have materialized assets: read them again (at most every 2 s).
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const stop = subscribe<{ runStatusChanges: { changes: { status: string }[] } }>(
      "subscription { runStatusChanges { changes { status } } }",
      {},
      {
        next: (d) => {
          if (!d.runStatusChanges.changes.some((c) => ["SUCCESS", "FAILURE", "CANCELED"].includes(c.status))) return;
          if (timer === null) timer = setTimeout(() => ((timer = null), reload()), 2000);
        },
      },
    );
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
  }, []);

  const model = useMemo(() => {
    const byKey = new Map<string, AssetNodeData>();
    const repoOf = new Map<string, Repo>();
    for (const r of data?.repositoriesOrError.nodes ?? []) {
      for (const a of r.assetNodes) {
        byKey.set(keyOf(a.assetKey), a);
        repoOf.set(keyOf(a.assetKey), r);
      }
    }
    const st = states(byKey);
    const nodes: Asset[] = [...byKey].map(([key, a]) => ({
      id: key,
      group: a.groupName,
      data: a,
      repo: repoOf.get(key)!.name,
      state: st.get(key)!,
    }));
    const edges: [string, string][] = [];
    const parents = new Map<string, string[]>();
    const children = new Map<string, string[]>();
    for (const key of byKey.keys()) (parents.set(key, []), children.set(key, []));
    for (const [key, a] of byKey) {
      for (const d of a.dependencyKeys) {
        const dk = keyOf(d);
        if (!byKey.has(dk)) continue;
        edges.push([dk, key]);
        parents.get(key)!.push(dk);
        children.get(dk)!.push(key);
      }
    }
    return { nodes, edges, graph: { parents, children }, repoOf };
  }, [data]);

  const fromQuery = useMemo(() => (query.trim() ? select(query, model.graph) : null), [query, model]);
  const selected = fromQuery && fromQuery.keys.size > 0 ? fromQuery.keys : picked;

  const materialize = async () => {
    // External assets are made elsewhere: reported, never materialized by a run.
    const runnable = new Set(model.nodes.filter((n) => n.data.isMaterializable !== false).map((n) => n.id));
    const keys = (selected.size ? [...selected] : model.nodes.map((n) => n.id)).filter((k) => runnable.has(k));
    const byLocation = new Map<string, { repo: string; keys: string[] }>();
    for (const k of keys) {
      const r = model.repoOf.get(k)!;
      const entry = byLocation.get(r.location.name) ?? { repo: r.name, keys: [] };
      entry.keys.push(k);
      byLocation.set(r.location.name, entry);
    }
    const launched: string[] = [];
    for (const [location, { repo, keys: ks }] of byLocation) {
      const d = await gql<{ launchRun: { __typename: string; run?: { runId: string }; message?: string } }>(
        `mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename
          ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }`,
        {
          p: {
            selector: {
              repositoryLocationName: location,
              repositoryName: repo,
              jobName: "__ASSET_JOB",
              assetSelection: ks.map((k) => ({ path: k.split("/") })),
            },
          },
        },
      );
      if (d.launchRun.run) launched.push(d.launchRun.run.runId);
      else setMessage(`${d.launchRun.__typename}: ${d.launchRun.message ?? ""}`);
    }
    if (launched.length === 1) navigate(`/runs/${launched[0]}`);
    else if (launched.length > 1) navigate("/runs");
  };

  if (error) return <div class="error">Could not load assets: {error}</div>;
  if (!data) return <div class="muted">Loading assets…</div>;
  return (
    <div class="page page-fill">
      <div class="toolbar">
        <h1>Assets</h1>
        <input
          class="search"
          placeholder="Select: key, +key, key+, *key…"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
        <span class="muted">
          {model.nodes.length} assets
          {selected.size > 0 && `, ${selected.size} selected`}
          {fromQuery && fromQuery.unknown.length > 0 && ` — no asset ${fromQuery.unknown.join(", ")}`}
        </span>
        <span class="spacer" />
        <button onClick={reload}>Refresh</button>
        <button class="primary" disabled={model.nodes.length === 0} onClick={() => void materialize()}>
          {selected.size ? `Materialize selected (${selected.size})` : "Materialize all"}
        </button>
      </div>
      {message && <div class="error">{message}</div>}
      <GraphView
        nodes={model.nodes}
        edges={model.edges}
        width={200}
        height={64}
        highlighted={selected}
        nodeClass={(n) => `asset asset-${n.state}`}
        onBackground={() => (setPicked(new Set()), setQuery(""))}
        onClickNode={(n, e) => {
          if (e.shiftKey || e.metaKey || e.ctrlKey) {
            const next = new Set(picked);
            if (next.has(n.id)) next.delete(n.id);
            else next.add(n.id);
            setPicked(next);
          } else if (e.detail >= 2) navigate(`/assets/${n.id}`);
          else setPicked(new Set([n.id]));
        }}
        renderNode={(n) => (
          <>
            <rect width="200" height="64" rx="6" class={`asset asset-${n.state}`} />
            <text x="10" y="20" class="node-title">{n.id.length > 26 ? `${n.id.slice(0, 25)}…` : n.id}</text>
            <text x="10" y="38" class="node-sub">
              {!n.data.isMaterializable
                ? "External"
                : n.state === "missing"
                  ? "Never materialized"
                  : when(n.data.latestMaterialization!.timestamp)}
              {n.state === "stale" ? " · stale" : ""}
            </text>
            <text x="10" y="55" class="node-kind">{[n.group, ...n.data.kinds].join(" · ")}</text>
            <a href={`/assets/${n.id}`}>
              <text x="186" y="20" class="node-link">↗</text>
            </a>
          </>
        )}
      />
    </div>
  );
}
