import { useState } from "preact/hooks";
import { gql } from "./gql";
import { useLoad, when } from "./util";

type EvalNode = { uniqueId: string; userLabel: string | null; numTrue: number; numCandidates: number | null; childUniqueIds: string[]; truePartitionKeys: string[] };
type EvalRecord = { id: string; timestamp: number; numRequested: number; runIds: string[]; error: string | null; rootUniqueId: string; evaluationNodes: EvalNode[] };
type Loaded = {
  assetNodes: { automationCondition: { label: string | null; expandedLabel: string[] } | null }[];
  assetConditionEvaluationRecordsOrError: { records?: EvalRecord[]; message?: string };
};

const QUERY = `query($k: AssetKeyInput!) { assetNodes(assetKeys: [$k]) { automationCondition { label expandedLabel } }
  assetConditionEvaluationRecordsOrError(assetKey: $k, limit: 10) {
  ... on AssetConditionEvaluationRecords { records { id timestamp numRequested runIds error rootUniqueId
    evaluationNodes { uniqueId userLabel numTrue numCandidates childUniqueIds truePartitionKeys } } }
  ... on PythonError { message } } }`;

function Tree({ nodes, id, depth }: { nodes: Map<string, EvalNode>; id: string; depth: number }) {
  const node = nodes.get(id);
  if (!node) return null;
  const partitions = node.truePartitionKeys.length > 0 ? ` [${node.truePartitionKeys.join(", ")}]` : "";
  return (
    <>
      <div class={`eval-node ${node.numTrue > 0 ? "eval-true" : "eval-false"}`} style={{ paddingLeft: `${depth * 16}px` }}>
        {node.numTrue > 0 ? "✓" : "✗"} {node.userLabel ?? node.uniqueId}{" "}
        <span class="muted">
          ({node.numTrue}/{node.numCandidates ?? 0}){partitions}
        </span>
      </div>
      {node.childUniqueIds.map((child) => (
        <Tree nodes={nodes} id={child} depth={depth + 1} />
      ))}
    </>
  );
}

/** The asset's latest automation evaluations: whether it was requested, and the condition tree that says why. */
export function AutomationPanel({ assetKey }: { assetKey: string }) {
  const [open, setOpen] = useState<string | null>(null);
  const { data, error } = useLoad(() => gql<Loaded>(QUERY, { k: { path: assetKey.split("/") } }), [assetKey]);
  if (error) return <div class="error">{error}</div>;
  if (!data) return null;
  const found = data.assetConditionEvaluationRecordsOrError;
  if (found.message) return <div class="error">{found.message}</div>;
  const records = found.records ?? [];
  const condition = data.assetNodes[0]?.automationCondition ?? null;
  if (records.length === 0 && !condition) return null;
  const shown = open ?? records[0]?.id;
  return (
    <div class="automation-panel">
      <h2>Automation</h2>
      {condition && (
        <p>
          Condition: <code>{condition.label ?? condition.expandedLabel.join(" ")}</code>
        </p>
      )}
      {records.length === 0 && <p class="muted">Not evaluated yet.</p>}
      {records.length > 0 && <table class="list">
        <thead><tr><th>Evaluated</th><th>Requested</th><th>Runs</th><th>Error</th></tr></thead>
        <tbody>
          {records.map((r) => (
            <tr class={r.id === shown ? "selected" : ""} onClick={() => setOpen(r.id)}>
              <td>{when(r.timestamp)}</td>
              <td>{r.numRequested}</td>
              <td>{r.runIds.map((id) => <a href={`/runs/${id}`}>{id.slice(0, 8)} </a>)}</td>
              <td>{r.error ?? "–"}</td>
            </tr>
          ))}
        </tbody>
      </table>}
      {records
        .filter((r) => r.id === shown && r.rootUniqueId)
        .map((r) => (
          <div class="eval-tree">
            <Tree nodes={new Map(r.evaluationNodes.map((n) => [n.uniqueId, n]))} id={r.rootUniqueId} depth={0} />
          </div>
        ))}
    </div>
  );
}
