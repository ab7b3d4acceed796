import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ERROR_FIELDS, gql, subscribe, type PythonError } from "../gql";
import { navigate, param, replaceParam } from "../router";
import { foldSteps, type RunEvent, type StepTimeline } from "../steps";
import { duration, ErrorBox, Status, Tags, toMs, useLoad, when } from "../util";
import { Virtual } from "../Virtual";
import { StepLogs } from "../StepLogs";

type RunData = {
  runId: string;
  status: string;
  jobName: string;
  repositoryLocationName: string;
  tags: { key: string; value: string }[];
  creationTime: number;
  startTime: number | null;
  endTime: number | null;
  canTerminate: boolean;
  parentRunId: string | null;
  rootRunId: string | null;
  runConfigYaml: string;
  failure: PythonError | null;
};

const RUN = `query($id: ID!) { runOrError(runId: $id) { __typename ... on Run { runId status jobName
  repositoryLocationName tags { key value } creationTime startTime endTime canTerminate parentRunId
  rootRunId runConfigYaml failure { ${ERROR_FIELDS} } } ... on Error { message } } }`;

const LOGS = `subscription($id: ID!, $cursor: String) { pipelineRunLogs(runId: $id, cursor: $cursor) {
  __typename ... on PipelineRunLogsSubscriptionSuccess { messagesJson cursor run { status canTerminate endTime startTime } }
  ... on PipelineRunLogsSubscriptionFailure { message } } }`;

type LogsPayload = {
  pipelineRunLogs: {
    __typename: string;
    messagesJson?: RunEvent[];
    cursor?: string;
    run?: { status: string; canTerminate: boolean; endTime: number | null; startTime: number | null };
    message?: string;
  };
};

const COLORS: Record<string, string> = {
  SUCCESS: "#2f9e44",
  FAILURE: "#e03131",
  IN_PROGRESS: "#1c7ed6",
  RETRY: "#f08c00",
  RETRYING: "#f08c00",
  SKIPPED: "#adb5bd",
};

function Gantt({ steps, t0, t1, selected, onSelect }: { steps: StepTimeline[]; t0: number; t1: number; selected: string; onSelect: (key: string) => void }) {
  const span = Math.max(t1 - t0, 1);
  const pct = (t: number) => `${(((t - t0) / span) * 100).toFixed(3)}%`;
  return (
    <div class="gantt" data-steps={steps.length}>
      <div class="gantt-axis muted">
        <span>{when(t0)}</span>
        <span>{duration(span / 1000)}</span>
      </div>
      <Virtual
        items={steps}
        rowHeight={22}
        height={Math.min(300, Math.max(steps.length, 1) * 22 + 4)}
        row={(s) => (
          <div class={s.key === selected ? "gantt-row selected" : "gantt-row"} data-step={s.key} data-status={s.status} key={s.key} onClick={() => onSelect(s.key === selected ? "" : s.key)}>
            <div class="gantt-label" title={s.key}>{s.key}</div>
            <div class="gantt-track">
              {s.attempts.map((a, i) => {
                const end = a.end ?? t1;
                return (
                  <div
                    key={i}
                    class="gantt-bar"
                    title={`${s.key} attempt ${i + 1}: ${a.status} ${duration((end - a.start) / 1000)}`}
                    style={{ left: pct(a.start), width: `max(3px, ${(((end - a.start) / span) * 100).toFixed(3)}%)`, background: COLORS[a.status] ?? "#868e96" }}
                  />
                );
              })}
            </div>
          </div>
        )}
      />
    </div>
  );
}

/** The full error (with its stack) of each event that carries one, read one by one from
 * the log at its cursor: the stream sends only class and message. */
function StepErrors({ runId, events }: { runId: string; events: RunEvent[] }) {
  const [full, setFull] = useState<Record<string, PythonError>>({});
  const key = events.map((e) => e.storageId).join(",");
  useEffect(() => {
    let live = true;
    for (const e of events.slice(0, 20)) {
      const id = String(e.storageId);
      if (full[id]) continue;
      void gql<{ logsForRun: { events?: { error?: PythonError | null }[] } }>(
        `query($id: ID!, $after: String) { logsForRun(runId: $id, afterCursor: $after, limit: 1) {
          ... on EventConnection { events { ... on ErrorEvent { error { ${ERROR_FIELDS} } } } } } }`,
        { id: runId, after: String(Number(e.storageId) - 1) },
      ).then((d) => {
        const error = d.logsForRun.events?.[0]?.error;
        if (live && error) setFull((f) => ({ ...f, [id]: error }));
      });
    }
    return () => void (live = false);
  }, [key]);
  if (events.length === 0) return null;
  return (
    <>
      <h2>Errors</h2>
      {events.slice(0, 20).map((e) => (
        <div class="step-error" data-step={e.stepKey ?? ""}>
          <b>{e.stepKey ?? "run"}</b> <span class="muted">{e.eventType}</span>
          <ErrorBox error={full[String(e.storageId)] ?? { message: e.error!.message, className: e.error!.className }} />
        </div>
      ))}
    </>
  );
}

export function RunPage({ runId }: { runId: string }) {
  const { data, error, reload } = useLoad(() => gql<{ runOrError: RunData & { __typename: string; message?: string } }>(RUN, { id: runId }), [runId]);
  const events = useRef<RunEvent[]>([]);
  const steps = useRef(new Map<string, StepTimeline>());
  const [version, setVersion] = useState(0);
  const [live, setLive] = useState<{ status: string; canTerminate: boolean; endTime: number | null } | null>(null);
  const [streamError, setStreamError] = useState<string | null>(null);
  const [now, setNow] = useState(Date.now());
  const [level, setLevel] = useState("");
  const [type, setType] = useState("");
  // The selected step is in the address (`?step=`), so a link can open a step's output.
  const [step, pickStep] = useState(() => param("step"));
  const setStep = (key: string) => (pickStep(key), replaceParam("step", key));
  const [search, setSearch] = useState("");
  const [actionMessage, setActionMessage] = useState<string | null>(null);

  useEffect(() => {
    events.current = [];
    steps.current = new Map();
    setLive(null);
    let cursor: string | null = null;
    let ended = false;
    let stop = () => {};
    const start = () => {
      stop = subscribe<LogsPayload>(LOGS, { id: runId, cursor }, {
        next: (d) => {
          const p = d.pipelineRunLogs;
          if (p.__typename !== "PipelineRunLogsSubscriptionSuccess") {
            setStreamError(p.message ?? "the run's logs are unavailable");
            return;
          }
          const batch = p.messagesJson ?? [];
          if (batch.length) {
            events.current = events.current.concat(batch);
            foldSteps(steps.current, batch, toMs);
            cursor = p.cursor || cursor;
          }
          if (p.run) {
            setLive(p.run);
            if (["SUCCESS", "FAILURE", "CANCELED"].includes(p.run.status) && !ended) {
              ended = true;
              reload();
            }
          }
          setVersion((v) => v + 1);
        },
        error: (e) => setStreamError(String((e as Error).message ?? e)),
      });
    };
    start();
    return () => stop();
  }, [runId]);

  const status = live?.status ?? data?.runOrError.status;
  const running = status !== undefined && !["SUCCESS", "FAILURE", "CANCELED"].includes(status);
  useEffect(() => {
    if (!running) return;
    const timer = setInterval(() => setNow(Date.now()), 500);
    return () => clearInterval(timer);
  }, [running]);

  const timeline = useMemo(() => [...steps.current.values()].sort((a, b) => a.first - b.first), [version]);
  const filtered = useMemo(() => {
    const s = search.toLowerCase();
    return events.current.filter(
      (e) =>
        (!level || e.level === level) &&
        (!type || e.eventType === type) &&
        (!step || e.stepKey === step) &&
        (!s || e.message.toLowerCase().includes(s) || (e.stepKey ?? "").toLowerCase().includes(s)),
    );
  }, [version, level, type, step, search]);
  const types = useMemo(() => [...new Set(events.current.map((e) => e.eventType))].sort(), [version]);

  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading run…</div>;
  const run = data.runOrError;
  if (run.__typename !== "Run") return <div class="error">{run.message}</div>;

  const allEvents = events.current;
  const t0 = run.startTime ? run.startTime * 1000 : allEvents.length ? toMs(allEvents[0].timestamp) : run.creationTime * 1000;
  const endTime = live?.endTime ?? run.endTime;
  const t1 = endTime ? endTime * 1000 : Math.max(now, t0 + 1000);

  const terminate = async () => {
    const d = await gql<{ terminateRun: { __typename: string; message?: string } }>(
      `mutation($id: String!) { terminateRun(runId: $id) { __typename ... on TerminateRunFailure { message } ... on Error { message } } }`,
      { id: runId },
    );
    setActionMessage(d.terminateRun.__typename === "TerminateRunSuccess" ? "Termination requested." : d.terminateRun.message ?? d.terminateRun.__typename);
  };
  const reexecute = async (strategy: "ALL_STEPS" | "FROM_FAILURE") => {
    const d = await gql<{ launchRunReexecution: { __typename: string; run?: { runId: string }; message?: string } }>(
      `mutation($p: ReexecutionParams!) { launchRunReexecution(reexecutionParams: $p) { __typename
        ... on LaunchRunSuccess { run { runId } } ... on Error { message } } }`,
      { p: { parentRunId: runId, strategy } },
    );
    const r = d.launchRunReexecution;
    if (r.run) navigate(`/runs/${r.run.runId}`);
    else setActionMessage(`${r.__typename}: ${r.message ?? ""}`);
  };

  return (
    <div class="page">
      <div class="toolbar">
        <h1>
          <a href="/runs">Runs</a> / <span class="mono">{runId.slice(0, 8)}</span>
        </h1>
        <Status status={status} />
        <span class="spacer" />
        <button disabled={!(live?.canTerminate ?? run.canTerminate)} onClick={() => void terminate()}>Terminate</button>
        <button disabled={running} onClick={() => void reexecute("ALL_STEPS")}>Re-execute all</button>
        <button disabled={running || status !== "FAILURE"} onClick={() => void reexecute("FROM_FAILURE")}>Re-execute from failure</button>
      </div>
      {actionMessage && <div class="notice">{actionMessage}</div>}
      <table class="kv">
        <tr><th>Job</th><td><a href={`/jobs/${run.repositoryLocationName}/${run.jobName}`}>{run.jobName}</a> <span class="muted">({run.repositoryLocationName})</span></td></tr>
        <tr><th>Started</th><td>{when(run.startTime)} · {duration((t1 - t0) / 1000)}</td></tr>
        {run.parentRunId && <tr><th>Re-execution of</th><td><a href={`/runs/${run.parentRunId}`}>{run.parentRunId.slice(0, 8)}</a></td></tr>}
        <tr><th>Tags</th><td><Tags tags={run.tags} /></td></tr>
      </table>
      <ErrorBox error={run.failure} />
      <StepErrors runId={runId} events={allEvents.filter((e) => e.error && e.eventType !== "RUN_FAILURE")} />
      {streamError && <div class="error">Event stream: {streamError}</div>}
      <h2>Timeline</h2>
      <Gantt steps={timeline} t0={t0} t1={t1} selected={step} onSelect={setStep} />
      {step && (
        <>
          <h2>Output of <span class="mono">{step}</span></h2>
          <StepLogs runId={runId} stepKey={step} />
        </>
      )}
      <h2>Events <span class="muted" data-events={allEvents.length}>({filtered.length} of {allEvents.length})</span></h2>
      <div class="toolbar">
        <select value={level} onChange={(e) => setLevel((e.target as HTMLSelectElement).value)}>
          <option value="">All levels</option>
          {["CRITICAL", "ERROR", "WARNING", "INFO", "DEBUG"].map((l) => <option value={l}>{l}</option>)}
        </select>
        <select value={type} onChange={(e) => setType((e.target as HTMLSelectElement).value)}>
          <option value="">All types</option>
          {types.map((t) => <option value={t}>{t}</option>)}
        </select>
        <select value={step} onChange={(e) => setStep((e.target as HTMLSelectElement).value)}>
          <option value="">All steps</option>
          {timeline.map((s) => <option value={s.key}>{s.key}</option>)}
        </select>
        <input class="search" placeholder="Search messages" value={search} onInput={(e) => setSearch((e.target as HTMLInputElement).value)} />
      </div>
      <Virtual
        class="log"
        items={filtered}
        rowHeight={24}
        height={420}
        follow={running}
        row={(e) => (
          <div class={`log-row level-${e.level.toLowerCase()}`} key={String(e.storageId)} title={e.error ? `${e.error.className ?? ""}: ${e.error.message}` : e.message}>
            <span class="log-time">{new Date(toMs(e.timestamp)).toLocaleTimeString(undefined, { hour12: false })}</span>
            <span class="log-type">{e.eventType}</span>
            <span class="log-step">{e.stepKey ?? ""}</span>
            <span class="log-msg">
              {e.message}
              {e.error && <b class="err"> {e.error.className}: {e.error.message}</b>}
            </span>
          </div>
        )}
      />
      <details>
        <summary>Run config</summary>
        <pre>{run.runConfigYaml || "{}"}</pre>
      </details>
    </div>
  );
}
