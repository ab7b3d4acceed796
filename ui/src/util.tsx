import { useEffect, useState } from "preact/hooks";
import type { PythonError } from "./gql";

/** A load's state: data, error, and a `reload`. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): { data: T | null; error: string | null; reload: () => void } {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (d) => live && (setData(d), setError(null)),
      (e: Error) => live && setError(e.message),
    );
    return () => void (live = false);
  }, [...deps, tick]);
  return { data, error, reload: () => setTick((t) => t + 1) };
}

/** Seconds (or milliseconds) since the epoch as local date and time. */
export function when(t: number | string | null | undefined): string {
  if (t === null || t === undefined || t === "") return "–";
  const ms = toMs(t);
  return new Date(ms).toLocaleString(undefined, { hour12: false });
}

export function toMs(t: number | string): number {
  const n = Number(t);
  return n > 1e11 ? n : n * 1000;
}

export function duration(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || seconds < 0) return "–";
  if (seconds < 1) return `${Math.round(seconds * 1000)} ms`;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  if (m < 60) return `${m}m ${Math.round(seconds % 60)}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function Status({ status }: { status: string | null | undefined }) {
  const s = status ?? "NONE";
  return <span class={`status status-${s.toLowerCase()}`}>{s}</span>;
}

export function ErrorBox({ error }: { error: PythonError | null | undefined }) {
  if (!error) return null;
  return (
    <div class="error">
      <b>{error.className ? `${error.className}: ` : ""}{error.message}</b>
      {error.stack && error.stack.length > 0 && <pre>{error.stack.join("")}</pre>}
      {error.cause && (
        <div>
          <i>The above was caused by:</i>
          <ErrorBox error={error.cause} />
        </div>
      )}
    </div>
  );
}

export function Tags({ tags }: { tags: { key: string; value: string }[] }) {
  return (
    <span class="tags">
      {tags.map((t) => (
        <span class="tag" key={t.key}>
          {t.key}: {t.value}
        </span>
      ))}
    </span>
  );
}
