import { AutomationPanel } from "../AutomationPanel";
import { gql } from "../gql";
import { AssetPartitions } from "../partitions/AssetPartitions";
import { useLoad, when } from "../util";

type Entry = { label: string; kind: string; value: unknown };
type Mat = { timestamp: string; runId: string; partition: string | null; metadataEntries: Entry[] };
type Node = {
  assetKey: { path: string[] };
  groupName: string;
  description: string | null;
  kinds: string[];
  opName: string | null;
  jobNames: string[];
  repositoryLocationName: string;
  dependencyKeys: { path: string[] }[];
  dependedByKeys: { path: string[] }[];
  assetMaterializations: Mat[];
  staleStatus: string | null;
  staleCauses: { reason: string; dependency: { path: string[] } | null }[];
  isMaterializable: boolean;
};

function Plot({ label, points }: { label: string; points: [number, number][] }) {
  if (points.length === 0) return null;
  const xs = points.map((p) => p[0]);
  const ys = points.map((p) => p[1]);
  const [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  const [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  const W = 320;
  const H = 80;
  const sx = (x: number) => (x1 === x0 ? W / 2 : ((x - x0) / (x1 - x0)) * (W - 10) + 5);
  const sy = (y: number) => (y1 === y0 ? H / 2 : H - 5 - ((y - y0) / (y1 - y0)) * (H - 10));
  return (
    <div class="plot">
      <div>
        <b>{label}</b> <span class="muted">latest {ys[ys.length - 1]} · min {y0} · max {y1}</span>
      </div>
      <svg width={W} height={H}>
        <polyline points={points.map(([x, y]) => `${sx(x)},${sy(y)}`).join(" ")} />
        {points.map(([x, y]) => (
          <circle cx={sx(x)} cy={sy(y)} r="2.5" />
        ))}
      </svg>
    </div>
  );
}

export function AssetPage({ assetKey }: { assetKey: string }) {
  const { data, error } = useLoad(
    () =>
      gql<{ assetNodes: Node[] }>(
        `query($k: [AssetKeyInput!]) { assetNodes(assetKeys: $k) { assetKey { path } groupName description
          kinds opName jobNames repositoryLocationName dependencyKeys { path } dependedByKeys { path }
          staleStatus staleCauses { reason dependency { path } } isMaterializable
          assetMaterializations(limit: 200) { timestamp runId partition metadataEntries { label kind value } } } }`,
        { k: [{ path: assetKey.split("/") }] },
      ),
    [assetKey],
  );
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  const node = data.assetNodes[0];
  if (!node) return <div class="error">No asset {assetKey}</div>;
  const mats = node.assetMaterializations;
  const series = new Map<string, [number, number][]>();
  for (const m of [...mats].reverse()) {
    for (const e of m.metadataEntries) {
      const v = typeof e.value === "number" ? e.value : typeof e.value === "object" && e.value && "value" in e.value ? Number((e.value as { value: unknown }).value) : NaN;
      if (Number.isFinite(v)) {
        if (!series.has(e.label)) series.set(e.label, []);
        series.get(e.label)!.push([Number(m.timestamp), v]);
      }
    }
  }
  return (
    <div class="page">
      <h1>
        <a href="/assets">Assets</a> / {assetKey}
      </h1>
      <p>{node.description ?? <span class="muted">No description.</span>}</p>
      <table class="kv">
        <tr><th>Group</th><td>{node.groupName}</td></tr>
        <tr>
          <th>Status</th>
          <td class={node.staleStatus === "STALE" ? "stale-mark" : ""}>
            {node.isMaterializable ? (node.staleStatus ?? "–").toLowerCase() : "external"}
            {node.staleCauses.map((c) => (
              <div class="muted">{c.dependency ? `${c.dependency.path.join("/")}: ` : ""}{c.reason}</div>
            ))}
          </td>
        </tr>
        <tr><th>Code location</th><td>{node.repositoryLocationName}</td></tr>
        <tr><th>Kinds</th><td>{node.kinds.join(", ") || "–"}</td></tr>
        <tr><th>Jobs</th><td>{node.jobNames.map((j) => <a href={`/jobs/${node.repositoryLocationName}/${j}`}>{j} </a>)}</td></tr>
        <tr><th>Upstream</th><td>{node.dependencyKeys.map((k) => <a href={`/assets/${k.path.join("/")}`}>{k.path.join("/")} </a>)}</td></tr>
        <tr><th>Downstream</th><td>{node.dependedByKeys.map((k) => <a href={`/assets/${k.path.join("/")}`}>{k.path.join("/")} </a>)}</td></tr>
      </table>
      <AssetPartitions assetKey={assetKey} />
      <AutomationPanel assetKey={assetKey} />
      {series.size > 0 && (
        <>
          <h2>Metadata over time</h2>
          <div class="plots">{[...series].map(([label, pts]) => <Plot label={label} points={pts} />)}</div>
        </>
      )}
      <h2>Materializations ({mats.length})</h2>
      {mats.length === 0 ? (
        <p class="muted">Never materialized.</p>
      ) : (
        <table class="list">
          <thead><tr><th>Time</th><th>Run</th><th>Partition</th><th>Metadata</th></tr></thead>
          <tbody>
            {mats.map((m) => (
              <tr>
                <td>{when(m.timestamp)}</td>
                <td>{m.runId ? <a href={`/runs/${m.runId}`}>{m.runId.slice(0, 8)}</a> : <span class="muted">reported</span>}</td>
                <td>{m.partition ?? "–"}</td>
                <td>{m.metadataEntries.map((e) => <span class="tag">{e.label}: {JSON.stringify(e.value)}</span>)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}
