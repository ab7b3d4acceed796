// The run page's timeline, folded from the run's events as they stream in.

export type RunEvent = {
  storageId: number | string;
  timestamp: number | string;
  eventType: string;
  level: string;
  stepKey: string | null;
  message: string;
  assetKey?: string[];
  error?: { className: string | null; message: string };
};

export type Attempt = { start: number; end: number | null; status: string };

export type StepTimeline = { key: string; status: string; attempts: Attempt[]; first: number };

const ENDS: Record<string, string> = {
  STEP_SUCCESS: "SUCCESS",
  STEP_FAILURE: "FAILURE",
  STEP_UP_FOR_RETRY: "RETRY",
  STEP_SKIPPED: "SKIPPED",
};

/** Fold `events` into `steps` (mutated in place; returns whether anything changed). */
export function foldSteps(steps: Map<string, StepTimeline>, events: RunEvent[], toMs: (t: number | string) => number): boolean {
  let changed = false;
  for (const e of events) {
    if (!e.stepKey) continue;
    const t = toMs(e.timestamp);
    let step = steps.get(e.stepKey);
    if (e.eventType === "STEP_START" || e.eventType === "STEP_RESTARTED") {
      if (!step) {
        step = { key: e.stepKey, status: "IN_PROGRESS", attempts: [], first: t };
        steps.set(e.stepKey, step);
      }
      const open = step.attempts[step.attempts.length - 1];
      if (!open || open.end !== null) step.attempts.push({ start: t, end: null, status: "IN_PROGRESS" });
      step.status = "IN_PROGRESS";
      changed = true;
    } else if (e.eventType in ENDS) {
      const status = ENDS[e.eventType];
      if (!step) {
        step = { key: e.stepKey, status, attempts: [], first: t };
        steps.set(e.stepKey, step);
      }
      const open = step.attempts[step.attempts.length - 1];
      if (open && open.end === null) {
        open.end = t;
        open.status = status;
      } else step.attempts.push({ start: t, end: t, status });
      step.status = status === "RETRY" ? "RETRYING" : status;
      changed = true;
    }
  }
  return changed;
}
