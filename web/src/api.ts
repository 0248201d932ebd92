// Talks to Lanterna's JSON API (docs/api.md). Every request goes through
// request(), and credentials are attached only in credentials(): a secret
// key pasted in Settings goes as a bearer key; otherwise the browser's
// session cookie (set by the login, HttpOnly) goes with the request, and
// writes carry the CSRF token from the lt_csrf cookie (double submit).

export class ApiError extends Error {
  constructor(public status: number, public code: string, message: string) {
    super(message);
  }
}

const KEY_STORAGE = "lanterna.apiKey";

export function apiKey(): string {
  try {
    return localStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setApiKey(key: string): void {
  if (key) localStorage.setItem(KEY_STORAGE, key);
  else localStorage.removeItem(KEY_STORAGE);
}

function cookie(name: string): string {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

function credentials(method: string): { headers: Record<string, string>; init: RequestInit } {
  const key = apiKey();
  if (key) return { headers: { Authorization: `Bearer ${key}` }, init: { credentials: "omit" } };
  const headers: Record<string, string> = {};
  const token = cookie("lt_csrf");
  if (token && method !== "GET" && method !== "HEAD") headers["X-CSRF-Token"] = token;
  return { headers, init: { credentials: "same-origin" } };
}

// Told about every 401 met without a pasted key: the shell then shows the
// login page.
let unauthorized: (() => void) | null = null;
export function onUnauthorized(fn: (() => void) | null): void {
  unauthorized = fn;
}

export type Params = Record<string, string | number | boolean | null | undefined>;

export function query(params?: Params): string {
  if (!params) return "";
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "" || v === false) continue;
    q.set(k, String(v));
  }
  const s = q.toString();
  return s ? "?" + s : "";
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function request<T>(path: string, params?: Params, opts: RequestOptions = {}): Promise<T> {
  const method = opts.method || "GET";
  const cred = credentials(method);
  const headers: Record<string, string> = { Accept: "application/json", ...cred.headers };
  let body: string | undefined;
  if (opts.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = typeof opts.body === "string" ? opts.body : JSON.stringify(opts.body);
  }
  let res: Response;
  try {
    res = await fetch(path + query(params), { ...cred.init, method, headers, body, signal: opts.signal });
  } catch (e) {
    if ((e as Error).name === "AbortError") throw e;
    throw new ApiError(0, "network", "Cannot reach the Lanterna server. Is it running?");
  }
  const text = await res.text();
  let json: any = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    /* handled below */
  }
  if (!res.ok) {
    const err = json && json.error;
    let message = err && err.message ? String(err.message) : `The server answered ${res.status} ${res.statusText}`;
    if (res.status === 401 && !path.startsWith("/api/v1/auth/")) {
      if (apiKey()) message += ". Set an API key in Settings.";
      else {
        message += ". Log in, or set an API key in Settings.";
        if (unauthorized) unauthorized();
      }
    }
    throw new ApiError(res.status, err && err.code ? String(err.code) : "http_" + res.status, message);
  }
  if (json === null && text) throw new ApiError(res.status, "bad_response", "The server sent a response that is not JSON");
  return json as T;
}

// ---- login ----------------------------------------------------------------

export interface Me {
  via: "anonymous" | "key" | "session";
  user: { id: number; name: string } | null;
  project_id: number | null;
  auth_required: boolean;
}

export const me = (signal?: AbortSignal) => request<Me>("/api/v1/auth/me", undefined, { signal });
export const login = (name: string, password: string) =>
  request<{ user: { id: number; name: string }; csrf: string; expires: string }>("/api/v1/auth/login", undefined, {
    method: "POST",
    body: { name, password },
  });
export const logout = () => request<{ logged_out: boolean }>("/api/v1/auth/logout", undefined, { method: "POST" });

// ---- response shapes (the subset the UI reads) ---------------------------

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
  /* Lists with q: false while the full-text index is behind the newest spans. */
  search_complete?: boolean;
}

export interface TraceRow {
  trace_id: string;
  name: string | null;
  start_time: string;
  start_ns: number;
  end_ns: number;
  duration_ms: number;
  status: string;
  user_id: string | null;
  session_id: string | null;
  models: string[];
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
  cost_usd: number | null;
  span_count: number;
  error_count: number;
  tags: string[];
  service: string | null;
  environment: string | null;
}

export interface Message {
  role?: string;
  content?: string | Array<Record<string, unknown>> | null;
  tool_calls?: Array<{ id?: string; name?: string; arguments?: string }>;
  tool_call_id?: string;
  name?: string;
}

export interface Doc {
  id?: string;
  content?: string;
  score?: number;
  metadata?: unknown;
}

export interface Score {
  id: number;
  trace_id: string | null;
  span_id: string | null;
  session_id: string | null;
  name: string;
  data_type: string;
  value: number | null;
  string_value: string | null;
  source: string;
  comment: string | null;
  time: string;
}

export interface Span {
  trace_id: string;
  span_id: string;
  parent_span_id: string | null;
  depth: number;
  orphan: boolean;
  name: string;
  kind: string;
  start_time: string;
  start_ns: number;
  end_ns: number;
  duration_ms: number;
  status: string;
  status_message: string | null;
  service: string | null;
  provider: string | null;
  request_model: string | null;
  response_model: string | null;
  operation: string | null;
  input_tokens: number | null;
  output_tokens: number | null;
  total_tokens: number | null;
  cache_read_tokens: number | null;
  cache_write_tokens: number | null;
  reasoning_tokens: number | null;
  usage_rollup: boolean;
  cost_usd: number | null;
  cost_source: string;
  ttft_ms: number | null;
  tokens_per_second: number | null;
  feature: string | null;
  finish_reason: string | null;
  prompt_name: string | null;
  prompt_version: string | null;
  session_id: string | null;
  user_id: string | null;
  tags: string[];
  metadata: unknown;
  input: string | null;
  output: string | null;
  input_messages?: Message[] | null;
  output_messages?: Message[] | null;
  documents?: Doc[] | null;
  attributes?: unknown;
  resource?: unknown;
  events?: unknown[];
  links?: unknown[];
  logs?: unknown[];
  scores?: Score[];
}

export interface TraceDetail {
  trace: TraceRow;
  spans: Span[];
  truncated?: boolean; /* more spans than the view holds (the earliest 10,000 are here) */
  scores: Score[];
}

export type Figures = Record<string, number | null>;
export interface Point extends Figures {}
export interface Series {
  group?: string;
  totals: Figures;
  points: Array<Figures & { time: string }>;
}
export interface Metrics {
  from: string;
  to: string;
  interval: string;
  totals: Figures;
  burn?: { since: string | null; days: number; tokens_per_day: number; projected_tokens_30d: number; cost_per_day_usd: number | null; projected_cost_30d_usd: number | null };
  series: Array<Omit<Series, "points"> & { points: any[] }>;
  scores?: any;
}
