import { useEffect, useState } from "preact/hooks";
import { gql } from "../gql";
import { navigate } from "../router";
import { useLoad } from "../util";
import "./partitions.css";
import { counts, keysBetween, type PartitionState, segments, statesOf, type Statuses } from "./status";

type Node = { isPartitioned: boolean; partitionKeys: string[]; assetPartitionStatuses: Statuses | null };

const QUERY = `query($k: [AssetKeyInput!]) { assetNodes(assetKeys: $k) { isPartitioned partitionKeys
  assetPartitionStatuses { materializedPartitions failedPartitions unmaterializedPartitions materializingPartitions } } }`;

const LAUNCH = `mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on Error { message } } }`;

const LABELS: [PartitionState, string][] = [
  ["materialized", "materialized"],
  ["failed", "failed"],
  ["in_progress", "in progress"],
  ["missing", "missing"],
];

/** An asset's partition status bar; pick a range (two clicks on the bar, or the two
 * fields) and launch a backfill of it. Renders nothing for an unpartitioned asset. */
export function AssetPartitions({ assetKey }: { assetKey: string }) {
  const path = assetKey.split("/");
  const { data, error, reload } = useLoad(() => gql<{ assetNodes: Node[] }>(QUERY, { k: [{ path }] }), [assetKey]);
  const [from, setFrom] = useState("");
  const [to, setTo] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const [launching, setLaunching] = useState(false);

  // Statuses move while runs go on: read them again every few seconds.
  useEffect(() => {
    const timer = setInterval(reload, 3000);
    return () => clearInterval(timer);
  }, [assetKey]);

  const node = data?.assetNodes[0];
  if (error) return <div class="error">{error}</div>;
  if (!node || !node.isPartitioned || !node.assetPartitionStatuses) return null;
  const keys = node.partitionKeys;
  const states = statesOf(keys, node.assetPartitionStatuses);
  const c = counts(states);
  const n = keys.length;
  const picked = from && to ? keysBetween(keys, from, to) : from ? keysBetween(keys, from, from) : null;
  const range = Array.isArray(picked) ? picked : null;
  const lo = range ? keys.indexOf(range[0]) : -1;

  const onBar = (e: MouseEvent) => {
    const bar = e.currentTarget as HTMLElement;
    const box = bar.getBoundingClientRect();
    const i = Math.min(n - 1, Math.max(0, Math.floor(((e.clientX - box.left) / box.width) * n)));
    if (!from || to) {
      setFrom(keys[i]);
      setTo("");
    } else {
      setTo(keys[i]);
    }
    setProblem(null);
  };

  const launch = async () => {
    if (!range) return;
    setLaunching(true);
    try {
      const d = await gql<{ launchPartitionBackfill: { __typename: string; backfillId?: string; message?: string } }>(LAUNCH, {
        p: { assetSelection: [{ path }], partitionNames: range },
      });
      const r = d.launchPartitionBackfill;
      if (r.backfillId) navigate(`/backfills/${r.backfillId}`);
      else setProblem(`${r.__typename}: ${r.message ?? ""}`);
    } catch (e) {
      setProblem((e as Error).message);
    } finally {
      setLaunching(false);
    }
  };

  return (
    <div class="pbar-wrap" data-testid="partitions">
      <h2>Partitions ({n})</h2>
      <div class="pcounts">
        {LABELS.map(([state, label]) => (
          <span data-state={state} data-count={c[state]}>
            <span class={`dot ${state}`} />
            {c[state]} {label}
          </span>
        ))}
      </div>
      <div class="pbar" onClick={onBar} title="Click a first and a last partition to select a range">
        {segments(states).map((s) => (
          <div
            class={`seg ${s.state}`}
            style={{ flexGrow: s.last - s.first + 1 }}
            data-first={keys[s.first]}
            data-last={keys[s.last]}
            title={`${keys[s.first]}${s.last > s.first ? ` … ${keys[s.last]}` : ""}: ${s.state.replace("_", " ")}`}
          />
        ))}
        {range && n > 0 && (
          <div class="sel" style={{ left: `${(lo / n) * 100}%`, width: `${(range.length / n) * 100}%` }} />
        )}
      </div>
      <div class="pbar-axis">
        <span>{keys[0]}</span>
        <span>{keys[n - 1]}</span>
      </div>
      <div class="prange">
        <label>
          From <input name="from" value={from} placeholder={keys[0]} onInput={(e) => setFrom((e.target as HTMLInputElement).value)} />
        </label>
        <label>
          to <input name="to" value={to} placeholder={keys[n - 1]} onInput={(e) => setTo((e.target as HTMLInputElement).value)} />
        </label>
        <span class="muted selected-range">
          {typeof picked === "string" ? picked : range ? `${range.length} partition(s) selected` : "No range selected"}
        </span>
        <button class="primary" disabled={!range || launching} onClick={() => void launch()}>
          Launch backfill
        </button>
        <button disabled={!from && !to} onClick={() => (setFrom(""), setTo(""), setProblem(null))}>
          Clear
        </button>
      </div>
      {problem && <div class="error">{problem}</div>}
    </div>
  );
}
