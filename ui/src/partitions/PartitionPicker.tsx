import { useState } from "preact/hooks";
import { gql } from "../gql";
import { useLoad } from "../util";

type Selector = { repositoryLocationName: string; repositoryName: string };
type SetResult = { __typename: string; partitionsOrError?: { results?: { name: string }[] } };
type PartitionResult = {
  partitionSetOrError: {
    partition?: {
      runConfigOrError: { yaml?: string; message?: string };
      tagsOrError: { results?: { key: string; value: string }[]; message?: string };
    } | null;
  };
};

/** A partitioned job's partitions, for the launchpad: picking one hands its run config
 * (YAML, empty when the job has no partitioned config) and tags to `onPick`. Renders
 * nothing for a job without partitions. */
export function PartitionPicker({
  selector,
  job,
  onPick,
}: {
  selector: Selector | null;
  job: string;
  onPick: (partition: string, yaml: string, tags: { key: string; value: string }[]) => void;
}) {
  const [picked, setPicked] = useState("");
  const [problem, setProblem] = useState<string | null>(null);
  const name = `${job}_partition_set`;
  const { data } = useLoad(async () => {
    if (!selector) return null;
    const d = await gql<{ partitionSetOrError: SetResult }>(
      `query($n: String!, $r: RepositorySelector) { partitionSetOrError(partitionSetName: $n, repositorySelector: $r) {
        __typename ... on PartitionSet { partitionsOrError { ... on Partitions { results { name } } } } } }`,
      { n: name, r: selector },
    );
    return d.partitionSetOrError;
  }, [selector?.repositoryLocationName, job]);
  const keys = data?.partitionsOrError?.results?.map((p) => p.name) ?? [];
  if (!data || data.__typename !== "PartitionSet") return null;

  const pick = async (key: string) => {
    setPicked(key);
    setProblem(null);
    if (!key) return;
    try {
      const d = await gql<PartitionResult>(
        `query($n: String!, $r: RepositorySelector, $k: String!) { partitionSetOrError(partitionSetName: $n, repositorySelector: $r) {
          ... on PartitionSet { partition(partitionName: $k) {
            runConfigOrError { ... on PartitionRunConfig { yaml } ... on PythonError { message } }
            tagsOrError { ... on PartitionTags { results { key value } } ... on PythonError { message } } } } } }`,
        { n: name, r: selector, k: key },
      );
      const p = d.partitionSetOrError.partition;
      if (!p) return setProblem(`no partition ${key}`);
      if (p.runConfigOrError.message) return setProblem(p.runConfigOrError.message);
      onPick(key, p.runConfigOrError.yaml ?? "", p.tagsOrError.results ?? [{ key: "dagster/partition", value: key }]);
    } catch (e) {
      setProblem((e as Error).message);
    }
  };

  return (
    <div class="picker">
      <h2>Partition</h2>
      <select name="partition" value={picked} onChange={(e) => void pick((e.target as HTMLSelectElement).value)}>
        <option value="">Choose one of {keys.length} partition(s)…</option>
        {[...keys].reverse().map((k) => (
          <option value={k}>{k}</option>
        ))}
      </select>
      {problem && <div class="error problem">{problem}</div>}
    </div>
  );
}
