import { useEffect, useState } from "preact/hooks";
import { gql, subscribe } from "../gql";
import { duration, Status, Tags, useLoad, when } from "../util";

type RunRow = {
  runId: string;
  status: string;
  jobName: string;
  tags: { key: string; value: string }[];
  creationTime: number;
  startTime: number | null;
  endTime: number | null;
};

const STATUSES = ["QUEUED", "NOT_STARTED", "STARTING", "STARTED", "SUCCESS", "FAILURE", "CANCELING", "CANCELED"];

export function RunsPage() {
  const params = new URLSearchParams(location.search);
  const [status, setStatus] = useState(params.get("status") ?? "");
  const [job, setJob] = useState(params.get("job") ?? "");
  const [tag, setTag] = useState(params.get("tag") ?? "");
  const filter: Record<string, unknown> = {};
  if (status) filter.statuses = [status];
  if (job.trim()) filter.pipelineName = job.trim();
  const tagMatch = /^\s*([^=]+)=(.*)$/.exec(tag);
  if (tagMatch) filter.tags = [{ key: tagMatch[1].trim(), value: tagMatch[2].trim() }];
  const { data, error, reload } = useLoad(
    () =>
      gql<{ runsOrError: { results?: RunRow[]; message?: string } }>(
        `query($f: RunsFilter) { runsOrError(filter: $f, limit: 200) { ... on Runs { results { runId status jobName
          tags { key value } creationTime startTime endTime } } ... on Error { message } } }`,
        { f: filter },
      ),
    [JSON.stringify(filter)],
  );
  const [live, setLive] = useState<Record<string, string>>({});

  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | null = null;
    const stop = subscribe<{ runStatusChanges: { changes: { runId: string; status: string }[] } }>(
      "subscription { runStatusChanges { changes { runId status } } }",
      {},
      {
        next: (d) => {
          setLive((prev) => {
            const next = { ...prev };
            for (const c of d.runStatusChanges.changes) next[c.runId] = c.status;
            return next;
          });
          // New runs and end times: refetch, at most every second.
          if (timer === null) timer = setTimeout(() => ((timer = null), reload()), 1000);
        },
      },
    );
    return () => {
      stop();
      if (timer) clearTimeout(timer);
    };
  }, [JSON.stringify(filter)]);

  const rows = data?.runsOrError.results ?? [];
  return (
    <div class="page">
      <div class="toolbar">
        <h1>Runs</h1>
        <select value={status} onChange={(e) => setStatus((e.target as HTMLSelectElement).value)}>
          <option value="">All statuses</option>
          {STATUSES.map((s) => <option value={s}>{s}</option>)}
        </select>
        <input class="search" placeholder="Job" value={job} onChange={(e) => setJob((e.target as HTMLInputElement).value)} />
        <input class="search" placeholder="Tag key=value" value={tag} onChange={(e) => setTag((e.target as HTMLInputElement).value)} />
      </div>
      {error && <div class="error">{error}</div>}
      {data?.runsOrError.message && <div class="error">{data.runsOrError.message}</div>}
      {data && rows.length === 0 && <p class="muted">No runs.</p>}
      {rows.length > 0 && (
        <table class="list runs">
          <thead><tr><th>Run</th><th>Status</th><th>Job</th><th>Tags</th><th>Started</th><th>Duration</th></tr></thead>
          <tbody>
            {rows.map((r) => {
              const end = r.endTime ?? (r.startTime ? Date.now() / 1000 : null);
              return (
                <tr data-run={r.runId}>
                  <td class="mono"><a href={`/runs/${r.runId}`}>{r.runId.slice(0, 8)}</a></td>
                  <td><Status status={live[r.runId] ?? r.status} /></td>
                  <td>{r.jobName}</td>
                  <td><Tags tags={r.tags.filter((t) => !t.key.startsWith(".dagster"))} /></td>
                  <td>{when(r.startTime ?? r.creationTime)}</td>
                  <td>{r.startTime && end ? duration(end - r.startTime) : "–"}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </div>
  );
}
