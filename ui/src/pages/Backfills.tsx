import { useEffect, useState } from "preact/hooks";
import { gql } from "../gql";
import "../partitions/partitions.css";
import { Status, Tags, useLoad, when } from "../util";

type Count = { runStatus: string; count: number };
type Summary = {
  id: string;
  status: string;
  numPartitions: number;
  numCancelable: number;
  jobName: string;
  isAssetBackfill: boolean;
  assetSelection: { path: string[] }[] | null;
  timestamp: number;
  partitionStatusCounts: Count[];
};
type Detail = Summary & {
  partitionNames: string[];
  tags: { key: string; value: string }[];
  error: { message: string } | null;
  runs: { runId: string; status: string; tags: { key: string; value: string }[] }[];
};

const SUMMARY = "id status numPartitions numCancelable jobName isAssetBackfill assetSelection { path } timestamp partitionStatusCounts { runStatus count }";

const ORDER = ["SUCCESS", "FAILURE", "STARTED", "NOT_STARTED"];

function target(b: Summary): string {
  return b.isAssetBackfill && b.assetSelection ? b.assetSelection.map((k) => k.path.join("/")).join(", ") : b.jobName;
}

/** Partitions by where their runs stand, as a bar and as words. */
function Progress({ counts, total }: { counts: Count[]; total: number }) {
  const by = Object.fromEntries(counts.map((c) => [c.runStatus, c.count]));
  return (
    <div>
      <div class="bprogress">
        {ORDER.map((s) => (by[s] ? <div class={s.toLowerCase()} style={{ flexGrow: by[s] }} /> : null))}
      </div>
      <span class="muted backfill-counts">
        {by.SUCCESS ?? 0} materialized · {by.FAILURE ?? 0} failed · {by.STARTED ?? 0} in progress · {by.NOT_STARTED ?? 0} not submitted
        {" "}of {total}
      </span>
    </div>
  );
}

/** Poll while a backfill may still move. */
function usePoll(reload: () => void, active: boolean) {
  useEffect(() => {
    if (!active) return;
    const timer = setInterval(reload, 1500);
    return () => clearInterval(timer);
  }, [active]);
}

function moving(b: Summary): boolean {
  const by = Object.fromEntries(b.partitionStatusCounts.map((c) => [c.runStatus, c.count]));
  return b.status === "REQUESTED" || (by.STARTED ?? 0) > 0;
}

export function BackfillsPage() {
  const { data, error, reload } = useLoad(
    () => gql<{ partitionBackfillsOrError: { results?: Summary[]; message?: string } }>(
      `{ partitionBackfillsOrError { ... on PartitionBackfills { results { ${SUMMARY} } } ... on Error { message } } }`,
    ),
    [],
  );
  const results = data?.partitionBackfillsOrError.results ?? [];
  usePoll(reload, results.some(moving));
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  return (
    <div class="page">
      <h1>Backfills</h1>
      {results.length === 0 ? (
        <p class="muted">No backfills yet. Launch one from a partitioned asset's page or with `dagloom backfill launch`.</p>
      ) : (
        <table class="list backfills">
          <thead><tr><th>Backfill</th><th>Status</th><th>Target</th><th>Progress</th><th>Created</th></tr></thead>
          <tbody>
            {results.map((b) => (
              <tr data-backfill={b.id}>
                <td><a href={`/backfills/${b.id}`}>{b.id}</a></td>
                <td><Status status={b.status} /></td>
                <td>{target(b)}</td>
                <td><Progress counts={b.partitionStatusCounts} total={b.numPartitions} /></td>
                <td>{when(b.timestamp)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </div>
  );
}

export function BackfillPage({ backfillId }: { backfillId: string }) {
  const [problem, setProblem] = useState<string | null>(null);
  const { data, error, reload } = useLoad(
    () => gql<{ partitionBackfillOrError: Partial<Detail> & { __typename: string; message?: string } }>(
      `query($id: String!) { partitionBackfillOrError(backfillId: $id) { __typename ... on PartitionBackfill { ${SUMMARY}
        partitionNames tags { key value } error { message } runs(limit: 100) { runId status tags { key value } } }
        ... on Error { message } } }`,
      { id: backfillId },
    ),
    [backfillId],
  );
  const b = data?.partitionBackfillOrError;
  usePoll(reload, !!b && b.__typename === "PartitionBackfill" && moving(b as Detail));
  if (error) return <div class="error">{error}</div>;
  if (!b) return <div class="muted">Loading…</div>;
  if (b.__typename !== "PartitionBackfill") return <div class="error">{b.message}</div>;
  const d = b as Detail;
  const cancel = async () => {
    const r = await gql<{ cancelPartitionBackfill: { __typename: string; message?: string } }>(
      `mutation($id: String!) { cancelPartitionBackfill(backfillId: $id) { __typename ... on Error { message } } }`,
      { id: backfillId },
    );
    if (r.cancelPartitionBackfill.__typename !== "CancelBackfillSuccess") setProblem(r.cancelPartitionBackfill.message ?? "could not cancel");
    reload();
  };
  const names = d.partitionNames;
  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          <a href="/backfills">Backfills</a> / {d.id}
        </h1>
        <Status status={d.status} />
        <span class="spacer" />
        {d.status === "REQUESTED" && <button onClick={() => void cancel()}>Cancel backfill</button>}
      </div>
      {problem && <div class="error">{problem}</div>}
      {d.error && <div class="error">{d.error.message}</div>}
      <table class="kv">
        <tr><th>Target</th><td>{d.isAssetBackfill && d.assetSelection ? d.assetSelection.map((k) => <a href={`/assets/${k.path.join("/")}`}>{k.path.join("/")} </a>) : d.jobName}</td></tr>
        <tr><th>Partitions</th><td>{names.length ? `${names[0]} … ${names[names.length - 1]} (${names.length})` : "–"}</td></tr>
        <tr><th>Created</th><td>{when(d.timestamp)}</td></tr>
        <tr><th>Tags</th><td><Tags tags={d.tags} /></td></tr>
      </table>
      <h2>Progress</h2>
      <Progress counts={d.partitionStatusCounts} total={d.numPartitions} />
      <h2>Runs ({d.runs.length})</h2>
      {d.runs.length === 0 ? (
        <p class="muted">No runs submitted yet.</p>
      ) : (
        <table class="list">
          <thead><tr><th>Run</th><th>Status</th><th>Partitions</th></tr></thead>
          <tbody>
            {d.runs.map((r) => {
              const t = Object.fromEntries(r.tags.map((x) => [x.key, x.value]));
              const part = t["dagster/partition"] ?? (t["dagster/asset_partition_range_start"] ? `${t["dagster/asset_partition_range_start"]} … ${t["dagster/asset_partition_range_end"]}` : "–");
              return (
                <tr>
                  <td><a href={`/runs/${r.runId}`}>{r.runId.slice(0, 8)}</a></td>
                  <td><Status status={r.status} /></td>
                  <td>{part}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
