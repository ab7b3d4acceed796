import { useEffect, useState } from "preact/hooks";
import { subscribe } from "./gql";

const CAPTURED = `subscription($key: [String!]!, $cursor: String) { capturedLogs(logKey: $key, cursor: $cursor) {
  stdout stderr cursor } }`;

type Captured = { capturedLogs: { stdout: string | null; stderr: string | null; cursor: string | null } };

type Streams = { attempt: string; stdout: string; stderr: string };

/** The attempt a `capturedLogs` cursor ("attempt:stdout:stderr") names. */
export function cursorAttempt(cursor: string | null): string {
  return (cursor ?? "").split(":")[0] ?? "";
}

/** Fold one answer of the subscription into what is shown: a new attempt starts afresh. */
export function foldCaptured(shown: Streams, answer: Captured["capturedLogs"]): Streams {
  const attempt = cursorAttempt(answer.cursor);
  const base = attempt !== shown.attempt && shown.attempt !== "" ? { attempt, stdout: "", stderr: "" } : { ...shown, attempt };
  return { attempt, stdout: base.stdout + (answer.stdout ?? ""), stderr: base.stderr + (answer.stderr ?? "") };
}

/** The webserver path that downloads a step's latest stdout or stderr as plain text. */
export function downloadUrl(runId: string, stepKey: string, stream: "stdout" | "stderr"): string {
  const part = stream === "stdout" ? "out" : "err";
  return `/logs/${encodeURIComponent(runId)}/compute_logs/${encodeURIComponent(stepKey)}/${part}`;
}

/** One step's captured stdout and stderr, in tabs, following the output while it is written. */
export function StepLogs({ runId, stepKey }: { runId: string; stepKey: string }) {
  const [shown, setShown] = useState<Streams>({ attempt: "", stdout: "", stderr: "" });
  const [tab, setTab] = useState<"stdout" | "stderr">("stdout");
  const [error, setError] = useState<string | null>(null);
  const [done, setDone] = useState(false);
  useEffect(() => {
    setShown({ attempt: "", stdout: "", stderr: "" });
    setError(null);
    setDone(false);
    return subscribe<Captured>(CAPTURED, { key: [runId, "compute_logs", stepKey], cursor: null }, {
      next: (d) => setShown((s) => foldCaptured(s, d.capturedLogs)),
      error: (e) => setError(String((e as Error).message ?? e)),
      complete: () => setDone(true),
    });
  }, [runId, stepKey]);
  const text = shown[tab];
  return (
    <div class="step-logs" data-step={stepKey}>
      <div class="toolbar">
        {(["stdout", "stderr"] as const).map((t) => (
          <button class={tab === t ? "tab active" : "tab"} data-tab={t} onClick={() => setTab(t)}>
            {t} {shown[t] ? <span class="muted">({shown[t].length} chars)</span> : null}
          </button>
        ))}
        <span class="muted">{done ? "complete" : "streaming…"}</span>
        {shown[tab] ? (
          <a class="download" data-download={tab} href={downloadUrl(runId, stepKey, tab)} download>
            download {tab}
          </a>
        ) : null}
      </div>
      {error && <div class="error">Captured output: {error}</div>}
      <pre class="step-log-text" data-stream={tab}>{text || (done ? `No ${tab} captured.` : "")}</pre>
    </div>
  );
}
