/**
 * @module jobs/model
 * The async job contract (the cloud-processing gateway's messages) and where its state lives.
 *
 * State is one JSON object per job in R2 under `_cdn/jobs/`. R2 is already bound, strongly
 * consistent (a GET right after a PUT sees it, which KV does not promise for 60 s), and its
 * conditional put (`If-None-Match: *`) creates a job atomically, which is what makes `msg_id`
 * idempotent without a Durable Object or a D1 schema. Only one consumer works on a job at a
 * time, so later updates are plain overwrites.
 */
import { VERDICTS } from "../produce/verdicts";
import type { Storage } from "../storage/r2";

export interface JobRequest {
  msg_id: string;
  notify_url?: string;
  priority?: number;
  cmd: "transcode";
  params?: { quality?: number; speed?: number };
  input_files: { key: string }[];
  output_files: { key: string }[];
}

export interface OutputResult {
  key: string;
  /** 0 on success; otherwise one of OUTPUT_CODES. */
  code: number;
  message: string;
  extra?: { file_size: number; mime: string; width: number; height: number };
}

export type JobStateName = "queued" | "running" | "done" | "failed";

export interface JobState {
  msg_id: string;
  state: JobStateName;
  request: JobRequest;
  /** Origin of the request that created the job: edge-cache keys are per hostname. */
  origin: string;
  created: string;
  updated: string;
  outputs: OutputResult[];
  /** `attempts`: the last attempt made; `next`: the attempt already scheduled after it. */
  callback?: { attempts: number; delivered: boolean; lastStatus?: number; lastError?: string; gaveUp?: boolean; next?: number };
}

export type JobMessage =
  | { type: "run"; msg_id: string }
  | { type: "callback"; msg_id: string; attempt: number }
  /** The slow re-encode of a stored on-demand variant (jobs/reencode); `origin` names its edge-cache entries. */
  | { type: "reencode"; key: string; origin: string };

/** Output failure codes (stable, for origins to switch on), by production verdict (produce/verdicts). */
export const OUTPUT_CODES: Record<string, number> = Object.fromEntries(Object.entries(VERDICTS).map(([k, v]) => [k, v.code]));

const PREFIX = "_cdn/jobs/";
const keyOf = (msgId: string) => `${PREFIX}${encodeURIComponent(msgId)}.json`;

export function jobStore(store: Storage) {
  return {
    /** Creates the job unless one with this msg_id exists; false when it did. */
    async create(state: JobState): Promise<boolean> {
      const put = await store.put(keyOf(state.msg_id), JSON.stringify(state), { contentType: "application/json", onlyIf: new Headers({ "If-None-Match": "*" }) });
      return put !== null;
    },
    async get(msgId: string): Promise<JobState | null> {
      const text = await store.readText(keyOf(msgId));
      return text === null ? null : (JSON.parse(text) as JobState);
    },
    async save(state: JobState): Promise<void> {
      state.updated = new Date().toISOString();
      await store.put(keyOf(state.msg_id), JSON.stringify(state), { contentType: "application/json" });
    },
  };
}

export type JobStore = ReturnType<typeof jobStore>;

/** What GET /_api/jobs/<msg_id> and a duplicate POST answer. */
export function publicView(s: JobState) {
  return { msg_id: s.msg_id, state: s.state, outputs: s.outputs, callback: s.callback, created: s.created, updated: s.updated };
}
