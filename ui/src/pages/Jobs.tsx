import { GraphView } from "../GraphView";
import { gql, repositories } from "../gql";
import { Tags, useLoad } from "../util";

type JobRow = { name: string; description: string | null; isAssetJob: boolean; tags: { key: string; value: string }[] };
type Repo = { name: string; location: { name: string }; jobs: JobRow[] };

export function JobsPage() {
  const { data, error } = useLoad(
    () =>
      gql<{ repositoriesOrError: { nodes?: Repo[] } }>(
        "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } jobs { name description isAssetJob tags { key value } } } } } }",
      ),
    [],
  );
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  return (
    <div class="page">
      <h1>Jobs</h1>
      <table class="list">
        <thead><tr><th>Job</th><th>Code location</th><th>Description</th><th>Tags</th><th /></tr></thead>
        <tbody>
          {(data.repositoriesOrError.nodes ?? []).flatMap((r) =>
            r.jobs.map((j) => (
              <tr>
                <td><a href={`/jobs/${r.location.name}/${j.name}`}>{j.name}</a>{j.isAssetJob && <span class="tag">assets</span>}</td>
                <td>{r.location.name}</td>
                <td>{j.description ?? ""}</td>
                <td><Tags tags={j.tags} /></td>
                <td><a class="button" href={`/jobs/${r.location.name}/${j.name}/launchpad`}>Launchpad</a></td>
              </tr>
            )),
          )}
        </tbody>
      </table>
    </div>
  );
}

type Solid = { name: string; definition: { description: string | null }; inputs: { dependsOn: { solid: { name: string } }[] }[] };
type Pipeline = { __typename: string; name: string; description: string | null; tags: { key: string; value: string }[]; solids: Solid[]; message?: string };

export async function selectorFor(location: string, job: string) {
  const repo = (await repositories()).find((r) => r.repositoryLocationName === location && r.jobs.includes(job));
  if (!repo) throw new Error(`no job ${job} in code location ${location}`);
  return { repositoryLocationName: location, repositoryName: repo.repositoryName, pipelineName: job };
}

export function JobPage({ location, job }: { location: string; job: string }) {
  const { data, error } = useLoad(async () => {
    const params = await selectorFor(location, job);
    return gql<{ pipelineOrError: Pipeline }>(
      `query($p: PipelineSelector!) { pipelineOrError(params: $p) { __typename ... on Pipeline { name description
        tags { key value } solids { name definition { description } inputs { dependsOn { solid { name } } } } }
        ... on Error { message } } }`,
      { p: params },
    );
  }, [location, job]);
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  const p = data.pipelineOrError;
  if (p.__typename !== "Pipeline") return <div class="error">{p.message}</div>;
  const edges: [string, string][] = [];
  for (const s of p.solids) for (const i of s.inputs) for (const d of i.dependsOn) edges.push([d.solid.name, s.name]);
  const nodes = p.solids.map((s) => ({ id: s.name, solid: s }));
  return (
    <div class="page page-fill">
      <div class="toolbar">
        <h1><a href="/jobs">Jobs</a> / {p.name}</h1>
        <Tags tags={p.tags} />
        <span class="spacer" />
        <a class="button primary" href={`/jobs/${location}/${job}/launchpad`}>Launchpad</a>
        <a class="button" href={`/runs?job=${encodeURIComponent(job)}`}>Runs</a>
      </div>
      <p>{p.description ?? <span class="muted">No description.</span>}</p>
      <GraphView
        nodes={nodes}
        edges={edges}
        width={220}
        height={50}
        renderNode={(n) => (
          <>
            <rect width="220" height="50" rx="6" class="op" />
            <text x="10" y="20" class="node-title">{n.id}</text>
            <text x="10" y="38" class="node-sub">{(n.solid.definition.description ?? "").slice(0, 34)}</text>
          </>
        )}
      />
    </div>
  );
}
