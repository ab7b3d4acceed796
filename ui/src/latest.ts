// Each asset's status mark (assetsLatestInfo), kept live: read again whenever a run changes
// status, so the graph shows a run's assets in progress and then materialized or failed.
import { useEffect, useState } from "preact/hooks";
import { gql, subscribe } from "./gql";

export type AssetStatus = "MATERIALIZED" | "FAILED" | "IN_PROGRESS" | "MISSING" | "STALE";

export type LatestInfo = {
  id: string;
  status: AssetStatus;
  latestMaterialization: { timestamp: string } | null;
};

// Only what the graph draws: each field more costs the server ~5,000 resolver calls.
export const LATEST_QUERY = `{ assetsLatestInfo(assetKeys: []) { id status latestMaterialization { timestamp } } }`;

/** Status changes closer together than this are answered with one read. */
const SETTLE_MS = 300;

/** Every asset's latest info by key (`a/b`), or null until the first read; `refresh` reads
 * it again. */
export function useLatestInfo(): { latest: Map<string, LatestInfo> | null; refresh: () => void } {
  const [latest, setLatest] = useState<Map<string, LatestInfo> | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | null = null;
    let reading = false;
    let again = false;
    const read = async () => {
      if (reading) return void (again = true);
      reading = true;
      try {
        const d = await gql<{ assetsLatestInfo: LatestInfo[] }>(LATEST_QUERY);
        if (live) setLatest(new Map(d.assetsLatestInfo.map((i) => [i.id, i])));
      } catch {
        // The next status change reads again; the graph keeps the marks it has.
      } finally {
        reading = false;
        if (again && live) ((again = false), void read());
      }
    };
    void read();
    const stop = subscribe<{ runStatusChanges: unknown }>(
      "subscription { runStatusChanges { changes { status } } }",
      {},
      {
        next: () => {
          if (timer === null) timer = setTimeout(() => ((timer = null), void read()), SETTLE_MS);
        },
      },
    );
    return () => {
      live = false;
      stop();
      if (timer) clearTimeout(timer);
    };
  }, [tick]);
  return { latest, refresh: () => setTick((t) => t + 1) };
}

/** The words under an asset's name on the graph. */
export function statusText(info: LatestInfo | undefined, when: (t: string) => string): string {
  const at = info?.latestMaterialization ? when(info.latestMaterialization.timestamp) : null;
  switch (info?.status ?? "MISSING") {
    case "IN_PROGRESS":
      return at ? `In progress · ${at}` : "In progress";
    case "FAILED":
      return at ? `Failed · ${at}` : "Failed";
    case "STALE":
      return `Stale · ${at}`;
    case "MATERIALIZED":
      return `${at}`;
    default:
      return "Never materialized";
  }
}
