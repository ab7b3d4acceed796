import { useState } from "preact/hooks";
import { ERROR_FIELDS, gql, refreshRepos, type PythonError } from "../gql";
import { ErrorBox, useLoad, when } from "../util";

type Entry = {
  name: string;
  loadStatus: string;
  updatedTimestamp: number;
  locationOrLoadError: { __typename: string; isReloadSupported?: boolean; repositories?: { name: string }[] } & Partial<PythonError>;
};
type Daemon = { daemonType: string; required: boolean; healthy: boolean | null; lastHeartbeatTime: number | null; lastHeartbeatErrors: PythonError[] };

const QUERY = `{ version instance { info daemonHealth { allDaemonStatuses { daemonType required healthy lastHeartbeatTime lastHeartbeatErrors { ${ERROR_FIELDS} } } } }
  workspaceOrError { ... on Workspace { locationEntries { name loadStatus updatedTimestamp locationOrLoadError { __typename
    ... on RepositoryLocation { isReloadSupported repositories { name } } ... on PythonError { ${ERROR_FIELDS} } } } } ... on PythonError { ${ERROR_FIELDS} } } }`;

type Data = {
  version: string;
  instance: { info: string; daemonHealth: { allDaemonStatuses: Daemon[] } };
  workspaceOrError: { locationEntries?: Entry[] } & Partial<PythonError>;
};

export function DeploymentPage() {
  const { data, error, reload } = useLoad(() => gql<Data>(QUERY), []);
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<string | null>(null);
  const reloadLocation = async (name: string) => {
    setBusy(name);
    try {
      const d = await gql<{ reloadRepositoryLocation: { __typename: string; message?: string } }>(
        `mutation($n: String!) { reloadRepositoryLocation(repositoryLocationName: $n) { __typename ... on Error { message } } }`,
        { n: name },
      );
      const r = d.reloadRepositoryLocation;
      setMessage(r.__typename === "WorkspaceLocationEntry" ? `Reloaded ${name}.` : `${r.__typename}: ${r.message ?? ""}`);
      refreshRepos();
      reload();
    } finally {
      setBusy(null);
    }
  };
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  return (
    <div class="page">
      <h1>Deployment</h1>
      <p class="muted">dagloom {data.version}</p>
      {message && <div class="notice">{message}</div>}
      <h2>Code locations</h2>
      {data.workspaceOrError.message && <ErrorBox error={data.workspaceOrError as PythonError} />}
      <table class="list">
        <thead><tr><th>Location</th><th>Status</th><th>Updated</th><th>Repositories</th><th /></tr></thead>
        <tbody>
          {(data.workspaceOrError.locationEntries ?? []).map((e) => {
            const loc = e.locationOrLoadError;
            return (
              <tr data-location={e.name}>
                <td><b>{e.name}</b></td>
                <td>{loc.__typename === "PythonError" ? <span class="status status-failure">LOAD ERROR</span> : <span class="status status-success">{e.loadStatus}</span>}</td>
                <td>{when(e.updatedTimestamp)}</td>
                <td>{loc.__typename === "PythonError" ? <ErrorBox error={loc as PythonError} /> : (loc.repositories ?? []).map((r) => r.name).join(", ")}</td>
                <td><button disabled={busy !== null} onClick={() => void reloadLocation(e.name)}>{busy === e.name ? "Reloading…" : "Reload"}</button></td>
              </tr>
            );
          })}
        </tbody>
      </table>
      <h2>Daemons</h2>
      {data.instance.daemonHealth.allDaemonStatuses.length === 0 && <p class="muted">No daemon loops report to this instance.</p>}
      <table class="list">
        <tbody>
          {data.instance.daemonHealth.allDaemonStatuses.map((d) => (
            <tr>
              <td><b>{d.daemonType}</b>{!d.required && <span class="muted"> (optional)</span>}</td>
              <td>{d.healthy === null ? <span class="status">UNKNOWN</span> : d.healthy ? <span class="status status-success">HEALTHY</span> : <span class="status status-failure">NOT RUNNING</span>}</td>
              <td>Last heartbeat {when(d.lastHeartbeatTime)}</td>
              <td>{d.lastHeartbeatErrors.map((err) => <ErrorBox error={err} />)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <h2>Instance</h2>
      <pre>{data.instance.info}</pre>
    </div>
  );
}
