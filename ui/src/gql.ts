// GraphQL over HTTP for queries and mutations; subscriptions over graphql-ws, loaded only
// by the pages that stream (runs, run page).

export class GraphQLError extends Error {}

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors?.length) {
    throw new GraphQLError(body.errors.map((e: { message: string }) => e.message).join("; "));
  }
  return body.data as T;
}

type Sink<T> = { next: (value: T) => void; error?: (error: unknown) => void; complete?: () => void };

let client: Promise<import("graphql-ws").Client> | null = null;

function wsClient(): Promise<import("graphql-ws").Client> {
  if (client === null) {
    client = import("graphql-ws").then(({ createClient }) => {
      const scheme = location.protocol === "https:" ? "wss" : "ws";
      return createClient({ url: `${scheme}://${location.host}/graphql`, lazy: true, retryAttempts: 5 });
    });
  }
  return client;
}

/** Subscribe; the returned function unsubscribes. */
export function subscribe<T>(
  query: string,
  variables: Record<string, unknown>,
  sink: Sink<T>,
): () => void {
  let stop: (() => void) | null = null;
  let stopped = false;
  void wsClient().then((c) => {
    if (stopped) return;
    stop = c.subscribe<T>(
      { query, variables },
      {
        next: (msg) => {
          if (msg.errors?.length) sink.error?.(new GraphQLError(msg.errors.map((e) => e.message).join("; ")));
          else if (msg.data) sink.next(msg.data as T);
        },
        error: (e) => sink.error?.(e),
        complete: () => sink.complete?.(),
      },
    );
  });
  return () => {
    stopped = true;
    stop?.();
  };
}

export type Selector = { repositoryName: string; repositoryLocationName: string };

export type RepoInfo = Selector & { jobs: string[] };

let repos: Promise<RepoInfo[]> | null = null;

/** Every loaded repository of the workspace (cached; `refreshRepos` after a reload). */
export function repositories(): Promise<RepoInfo[]> {
  if (repos === null) {
    repos = gql<{ repositoriesOrError: { nodes?: { name: string; location: { name: string }; jobs: { name: string }[] }[] } }>(
      "{ repositoriesOrError { ... on RepositoryConnection { nodes { name location { name } jobs { name } } } } }",
    ).then((d) =>
      (d.repositoriesOrError.nodes ?? []).map((r) => ({
        repositoryName: r.name,
        repositoryLocationName: r.location.name,
        jobs: r.jobs.map((j) => j.name),
      })),
    );
    repos.catch(() => (repos = null));
  }
  return repos;
}

export function refreshRepos(): void {
  repos = null;
}

export type PythonError = { message: string; className?: string | null; stack?: string[]; cause?: PythonError | null };

export const ERROR_FIELDS = "message className stack cause { message className stack }";
