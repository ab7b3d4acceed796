import { useState } from "preact/hooks";
import { ERROR_FIELDS, gql, repositories, type PythonError, type Selector } from "../gql";
import { ErrorBox, useLoad, when } from "../util";

type Tick = { tickId: string; status: string | null; timestamp: number; runIds: string[]; skipReason: string | null; error: PythonError | null };
type State = { id: string; status: string; cursor: string | null; ticks: Tick[] };
type Schedule = { name: string; cronSchedule: string; executionTimezone: string | null; pipelineName: string; description: string | null; scheduleState: State; futureTicks: { results: { timestamp: number }[] } };
type Sensor = { name: string; description: string | null; minIntervalSeconds: number; targets: { pipelineName: string }[]; sensorState: State; nextTick: { timestamp: number } | null };
type Loaded = { selector: Selector; schedules: Schedule[]; sensors: Sensor[]; error?: string }[];

const TICKS = `ticks(limit: 10) { tickId status timestamp runIds skipReason error { ${ERROR_FIELDS} } }`;

async function load(): Promise<Loaded> {
  const out: Loaded = [];
  for (const r of await repositories()) {
    const selector = { repositoryName: r.repositoryName, repositoryLocationName: r.repositoryLocationName };
    const d = await gql<{ schedulesOrError: { results?: Schedule[]; message?: string }; sensorsOrError: { results?: Sensor[]; message?: string } }>(
      `query($s: RepositorySelector!) {
        schedulesOrError(repositorySelector: $s) { ... on Schedules { results { name cronSchedule executionTimezone pipelineName description
          scheduleState { id status cursor ${TICKS} } futureTicks(limit: 3) { results { timestamp } } } } ... on Error { message } }
        sensorsOrError(repositorySelector: $s) { ... on Sensors { results { name description minIntervalSeconds targets { pipelineName }
          sensorState { id status cursor ${TICKS} } nextTick { timestamp } } } ... on Error { message } } }`,
      { s: selector },
    );
    out.push({
      selector,
      schedules: d.schedulesOrError.results ?? [],
      sensors: d.sensorsOrError.results ?? [],
      error: d.schedulesOrError.message ?? d.sensorsOrError.message,
    });
  }
  return out;
}

function TickList({ ticks }: { ticks: Tick[] }) {
  if (ticks.length === 0) return <span class="muted">No ticks yet.</span>;
  return (
    <ul class="ticks">
      {ticks.map((t) => (
        <li>
          <span class={`status status-${(t.status ?? "none").toLowerCase()}`}>{t.status}</span> {when(t.timestamp)}{" "}
          {t.runIds.map((id) => <a class="mono" href={`/runs/${id}`}>{id.slice(0, 8)} </a>)}
          {t.skipReason && <span class="muted">{t.skipReason}</span>}
          {t.error && <ErrorBox error={t.error} />}
        </li>
      ))}
    </ul>
  );
}

function Toggle({ running, onToggle, name }: { running: boolean; onToggle: () => Promise<void>; name: string }) {
  const [busy, setBusy] = useState(false);
  return (
    <label class="toggle">
      <input
        type="checkbox"
        data-toggle={name}
        checked={running}
        disabled={busy}
        onChange={() => {
          setBusy(true);
          void onToggle().finally(() => setBusy(false));
        }}
      />
      {running ? "Running" : "Stopped"}
    </label>
  );
}

export function AutomationPage() {
  const { data, error, reload } = useLoad(load, []);
  const [message, setMessage] = useState<string | null>(null);
  const act = async (query: string, variables: Record<string, unknown>) => {
    const d = await gql<Record<string, { __typename: string; message?: string }>>(query, variables);
    const result = Object.values(d)[0];
    setMessage("message" in result && result.message ? `${result.__typename}: ${result.message}` : null);
    reload();
  };
  if (error) return <div class="error">{error}</div>;
  if (!data) return <div class="muted">Loading…</div>;
  return (
    <div class="page">
      <h1>Schedules &amp; sensors</h1>
      {message && <div class="error">{message}</div>}
      {data.map(({ selector, schedules, sensors, error: e }) => (
        <section>
          <h2>{selector.repositoryLocationName}</h2>
          {e && <div class="error">{e}</div>}
          <table class="list">
            <thead><tr><th>Schedule</th><th>State</th><th>Cron</th><th>Job</th><th>Next ticks</th><th>Tick history</th></tr></thead>
            <tbody>
              {schedules.map((s) => {
                const sel = { ...selector, scheduleName: s.name };
                return (
                  <tr data-schedule={s.name}>
                    <td><b>{s.name}</b><div class="muted">{s.description}</div></td>
                    <td>
                      <Toggle
                        name={s.name}
                        running={s.scheduleState.status === "RUNNING"}
                        onToggle={() =>
                          s.scheduleState.status === "RUNNING"
                            ? act("mutation($s: ScheduleSelector!) { stopRunningSchedule(scheduleSelector: $s) { __typename ... on Error { message } } }", { s: sel })
                            : act("mutation($s: ScheduleSelector!) { startSchedule(scheduleSelector: $s) { __typename ... on Error { message } } }", { s: sel })
                        }
                      />
                    </td>
                    <td><code>{s.cronSchedule}</code> {s.executionTimezone && <span class="muted">{s.executionTimezone}</span>}</td>
                    <td>{s.pipelineName}</td>
                    <td>{s.futureTicks.results.map((t) => <div>{when(t.timestamp)}</div>)}</td>
                    <td><TickList ticks={s.scheduleState.ticks} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <table class="list">
            <thead><tr><th>Sensor</th><th>State</th><th>Interval</th><th>Targets</th><th>Next tick</th><th>Cursor</th><th>Tick history</th></tr></thead>
            <tbody>
              {sensors.map((s) => {
                const sel = { ...selector, sensorName: s.name };
                return (
                  <tr data-sensor={s.name}>
                    <td><b>{s.name}</b><div class="muted">{s.description}</div></td>
                    <td>
                      <Toggle
                        name={s.name}
                        running={s.sensorState.status === "RUNNING"}
                        onToggle={() =>
                          s.sensorState.status === "RUNNING"
                            ? act("mutation($s: SensorSelector!) { stopSensor(sensorSelector: $s) { __typename ... on Error { message } } }", { s: sel })
                            : act("mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename ... on Error { message } } }", { s: sel })
                        }
                      />
                    </td>
                    <td>{s.minIntervalSeconds} s</td>
                    <td>{s.targets.map((t) => t.pipelineName).join(", ")}</td>
                    <td>{s.nextTick ? when(s.nextTick.timestamp) : "–"}</td>
                    <td><code>{s.sensorState.cursor ?? "–"}</code></td>
                    <td><TickList ticks={s.sensorState.ticks} /></td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </section>
      ))}
    </div>
  );
}
