// GraphQL over HTTP for queries and mutations; subscriptions over graphql-ws, loaded only
// by the pages that stream (runs, run page).

export class GraphQLError extends Error {}

/** Send the browser to the login page, which brings it back here after. */
export function toLogin(): void {
  const here = location.pathname + location.search;
  if (location.pathname !== "/login") location.assign(`/login?next=${encodeURIComponent(here)}`);
}

type ErrorBody = { message: string; extensions?: { code?: string } };

export async function gql<T>(query: string, variables: Record<string, unknown> = {}): Promise<T> {
  const response = await fetch("/graphql", {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ query, variables }),
  });
  // Not signed in (no token, or one expired or revoked): a 401, or a field refused with
  // UNAUTHORIZED. A typed UnauthorizedError (a mutation the token's role may not run) is the
  // page's to show.
  const body = response.status === 401 ? null : await response.json();
  if (body === null || body.errors?.some((e: ErrorBody) => e.extensions?.code === "UNAUTHORIZED")) {
    toLogin();
    throw new GraphQLError("Not signed in: going to the login page");
  }
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
          if (msg.errors?.some((e) => (e.extensions as ErrorBody["extensions"])?.code === "UNAUTHORIZED")) toLogin();
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
