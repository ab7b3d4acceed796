import { useMemo, useState } from "preact/hooks";
import { GraphView } from "../GraphView";
import { gql } from "../gql";
import { statusText, useLatestInfo } from "../latest";
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
  isMaterializable: boolean;
};

type Repo = { name: string; location: { name: string }; assetNodes: AssetNodeData[] };

type Asset = {
  id: string;
  group: string;
  data: AssetNodeData;
  repo: string;
};

const QUERY = `{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name }
  assetNodes { id assetKey { path } groupName description kinds jobNames repositoryLocationName
    dependencyKeys { path } isMaterializable } } } } }`;

export const keyOf = (k: { path: string[] }) => k.path.join("/");

export function AssetsPage() {
  const { data, error, reload } = useLoad(() => gql<{ repositoriesOrError: { nodes?: Repo[] } }>(QUERY), []);
  const [query, setQuery] = useState("");
  const [picked, setPicked] = useState<Set<string>>(new Set());
  const [message, setMessage] = useState<string | null>(null);

  const { latest, refresh } = useLatestInfo();
  const stateOf = (key: string) => (latest?.get(key)?.status ?? "MISSING").toLowerCase().replace("_", "-");

  const model = useMemo(() => {
    const byKey = new Map<string, AssetNodeData>();
    const repoOf = new Map<string, Repo>();
    for (const r of data?.repositoriesOrError.nodes ?? []) {
      for (const a of r.assetNodes) {
        byKey.set(keyOf(a.assetKey), a);
        repoOf.set(keyOf(a.assetKey), r);
      }
    }
    const nodes: Asset[] = [...byKey].map(([key, a]) => ({
      id: key,
      group: a.groupName,
      data: a,
      repo: repoOf.get(key)!.name,
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
    <div class="page page-fill" data-latest={latest ? "true" : "false"}>
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
        <button onClick={() => (reload(), refresh())}>Refresh</button>
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
        nodeClass={(n) => `asset asset-${stateOf(n.id)}`}
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
            <rect width="200" height="64" rx="6" class={`asset asset-${stateOf(n.id)}`} data-status={stateOf(n.id)} />
            <text x="10" y="20" class="node-title">{n.id.length > 26 ? `${n.id.slice(0, 25)}…` : n.id}</text>
            <text x="10" y="38" class="node-sub">
              {n.data.isMaterializable === false ? "External" : statusText(latest?.get(n.id), when)}
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
