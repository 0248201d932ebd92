import type { ComponentChildren } from "preact";
import { useState } from "preact/hooks";
import { ApiError } from "../api";
import { RANGES } from "../format";

export function ErrorBox({ error, retry }: { error: Error; retry?: () => void }) {
  const api = error instanceof ApiError ? error : null;
  return (
    <div class="error-box" role="alert">
      <strong>{api && api.status ? `Error ${api.status}${api.code ? ` (${api.code})` : ""}` : "Error"}</strong>
      <span class="error-message">{error.message}</span>
      {retry && (
        <button type="button" onClick={retry}>
          Retry
        </button>
      )}
    </div>
  );
}

export function Loading({ what = "Loading" }: { what?: string }) {
  return (
    <div class="loading" role="status" aria-live="polite">
      {what}…
    </div>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <div class="empty">{children}</div>;
}

export function RangePicker({ value, onChange, id = "range" }: { value: string; onChange: (v: string) => void; id?: string }) {
  return (
    <label class="field" for={id}>
      <span>Time range</span>
      <select id={id} value={value} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>
        {RANGES.map(([l]) => (
          <option value={l}>Last {l}</option>
        ))}
      </select>
    </label>
  );
}

const KIND_ABBR: Record<string, string> = {
  LLM: "LLM", CHAIN: "CHN", RETRIEVER: "RET", EMBEDDING: "EMB", TOOL: "TL", AGENT: "AGT",
  RERANKER: "RRK", GUARDRAIL: "GRD", EVALUATOR: "EVL", PROMPT: "PRM", UNKNOWN: "·",
};

export function KindIcon({ kind }: { kind: string }) {
  const k = KIND_ABBR[kind] ? kind : "UNKNOWN";
  return (
    <span class={`kind kind-${k.toLowerCase()}`} title={k} aria-label={`${k} span`}>
      {KIND_ABBR[k]}
    </span>
  );
}

export function Status({ status }: { status: string }) {
  return <span class={`status status-${status}`}>{status}</span>;
}

// Long text is cut in view (the DOM stays small); "Show all" expands it.
export const TEXT_LIMIT = 2000;

export function LongText({ text, limit = TEXT_LIMIT, pre = true }: { text: string; limit?: number; pre?: boolean }) {
  const [all, setAll] = useState(false);
  const cut = !all && text.length > limit;
  const shown = cut ? text.slice(0, limit) : text;
  const body = pre ? <pre class="text">{shown}{cut && "…"}</pre> : <span>{shown}{cut && "…"}</span>;
  return (
    <div class="long-text">
      {body}
      {cut && (
        <button type="button" class="link" onClick={() => setAll(true)}>
          Show all ({text.length.toLocaleString()} characters)
        </button>
      )}
    </div>
  );
}

export function Tags({ tags }: { tags: string[] | null | undefined }) {
  if (!tags || !tags.length) return null;
  return (
    <span class="tags">
      {tags.map((t) => (
        <span class="tag">{t}</span>
      ))}
    </span>
  );
}
