// One trace: a virtualised waterfall (only the rows in view are in the
// DOM, so 2,000+ spans scroll smoothly) and the selected span's panel. The
// selected span is in the URL (?span=), so a span is a deep link.
import type { ComponentChildren } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import { ApiError, request } from "../api";
import type { Score, Span, TraceDetail } from "../api";
import { Chat, Documents } from "../components/Chat";
import { ErrorBox, KindIcon, Loading, LongText, Status, Tags } from "../components/common";
import { JsonTree } from "../components/JsonTree";
import { compact, DASH, ms, num, time, usd } from "../format";
import { useLoad } from "../hooks";
import { setParams } from "../router";
import { NotFound } from "./NotFound";

const ROW = 26;
const OVERSCAN = 12;
const MAX_INDENT = 24;

function isEmpty(v: unknown): boolean {
  if (v === null || v === undefined) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return v === "";
}

function scoreValue(s: Score): string {
  if (s.data_type === "categorical") return s.string_value ?? DASH;
  if (s.data_type === "boolean") return s.value ? "true" : "false";
  if (s.name === "user_feedback") return (s.value ?? 0) > 0 ? "▲ thumbs up" : "▼ thumbs down";
  return num(s.value, 3);
}

export function Scores({ scores }: { scores: Score[] }) {
  if (!scores.length) return null;
  return (
    <table class="grid scores" aria-label="Scores">
      <thead>
        <tr>
          <th scope="col">Score</th>
          <th scope="col">Value</th>
          <th scope="col">Source</th>
          <th scope="col">Comment</th>
        </tr>
      </thead>
      <tbody>
        {scores.map((s) => (
          <tr>
            <td>{s.name}</td>
            <td>{scoreValue(s)}</td>
            <td>{s.source}</td>
            <td>{s.comment || ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

interface Visible {
  span: Span;
  index: number; // in the full list
  hasChildren: boolean;
}

function Waterfall({ spans, selected, onSelect }: { spans: Span[]; selected: string | null; onSelect: (id: string) => void }) {
  const box = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [height, setHeight] = useState(560);
  const [collapsed, setCollapsed] = useState<Set<string>>(new Set());

  const [t0, total] = useMemo(() => {
    let lo = Infinity, hi = -Infinity;
    for (const s of spans) {
      lo = Math.min(lo, s.start_ns);
      hi = Math.max(hi, s.end_ns);
    }
    return [lo, Math.max(1, hi - lo)];
  }, [spans]);

  const visible = useMemo(() => {
    const out: Visible[] = [];
    let hideBelow = Infinity; // depth under which rows are hidden
    spans.forEach((s, i) => {
      const next = spans[i + 1];
      const hasChildren = !!next && !next.orphan && next.depth > s.depth;
      if (s.depth > hideBelow && !s.orphan) return;
      hideBelow = Infinity;
      out.push({ span: s, index: i, hasChildren });
      if (hasChildren && collapsed.has(s.span_id)) hideBelow = s.depth;
    });
    return out;
  }, [spans, collapsed]);

  const pos = visible.findIndex((v) => v.span.span_id === selected);

  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const ro = new ResizeObserver(() => setHeight(el.clientHeight || 560));
    ro.observe(el);
    return () => ro.disconnect();
  }, []);

  // Keep the selected row in view (deep links, keyboard moves).
  useEffect(() => {
    const el = box.current;
    if (!el || pos < 0) return;
    const top = pos * ROW;
    if (top < el.scrollTop) el.scrollTop = top;
    else if (top + ROW > el.scrollTop + el.clientHeight) el.scrollTop = top + ROW - el.clientHeight + ROW;
  }, [pos]);

  const toggle = (id: string) => {
    const c = new Set(collapsed);
    if (c.has(id)) c.delete(id);
    else c.add(id);
    setCollapsed(c);
  };

  const onKey = (e: KeyboardEvent) => {
    const cur = pos < 0 ? 0 : pos;
    const page = Math.max(1, Math.floor(height / ROW) - 1);
    let n: number | null = null;
    if (e.key === "ArrowDown" || e.key === "j") n = cur + 1;
    else if (e.key === "ArrowUp" || e.key === "k") n = cur - 1;
    else if (e.key === "Home") n = 0;
    else if (e.key === "End") n = visible.length - 1;
    else if (e.key === "PageDown") n = cur + page;
    else if (e.key === "PageUp") n = cur - page;
    else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && visible[cur] && visible[cur].hasChildren) {
      const id = visible[cur].span.span_id;
      if (collapsed.has(id) === (e.key === "ArrowRight")) toggle(id);
    } else return;
    e.preventDefault();
    if (n !== null) {
      n = Math.max(0, Math.min(visible.length - 1, n));
      if (visible[n]) onSelect(visible[n].span.span_id);
    }
  };

  const first = Math.max(0, Math.floor(scrollTop / ROW) - OVERSCAN);
  const last = Math.min(visible.length, Math.ceil((scrollTop + height) / ROW) + OVERSCAN);
  const rows = visible.slice(first, last);
  const activeId = selected && pos >= 0 ? `wf-${selected}` : undefined;

  return (
    <div class="waterfall">
      <div class="wf-head" aria-hidden="true">
        <span>Span</span>
        <span>Timeline ({ms(total / 1e6)})</span>
      </div>
      <div
        ref={box}
        class="wf-body"
        role="listbox"
        aria-label={`Spans (${spans.length})`}
        aria-activedescendant={activeId}
        tabIndex={0}
        data-span-count={spans.length}
        onKeyDown={onKey}
        style={{ height: `min(70vh, ${visible.length * ROW + 2}px)` }}
        onScroll={(e) => setScrollTop((e.target as HTMLElement).scrollTop)}
      >
        <div class="wf-spacer" style={{ height: `${visible.length * ROW}px` }}>
          {rows.map((v, k) => {
            const s = v.span;
            const left = ((s.start_ns - t0) / total) * 100;
            const width = Math.max(0.3, ((s.end_ns - s.start_ns) / total) * 100);
            const err = s.status === "error";
            // The duration label goes after the bar, or before it when the
            // bar ends near the right edge, or inside it when it spans all.
            const end = left + width;
            const durInside = end > 80 && left < 15;
            const durStyle = end <= 80 ? { left: `${end}%` } : left >= 15 ? { right: `${100 - left}%` } : { right: `${100 - end}%` };
            return (
              <div
                id={`wf-${s.span_id}`}
                key={s.span_id}
                role="option"
                aria-selected={s.span_id === selected}
                aria-label={`${s.kind} ${s.name}, ${ms(s.duration_ms)}${err ? ", error" : ""}`}
                class={"wf-row" + (s.span_id === selected ? " selected" : "") + (err ? " error" : "")}
                style={{ top: `${(first + k) * ROW}px`, height: `${ROW}px` }}
                onClick={() => onSelect(s.span_id)}
              >
                <div class="wf-name" style={{ paddingLeft: `${Math.min(s.depth, MAX_INDENT) * 12 + 4}px` }}>
                  {v.hasChildren ? (
                    <button
                      type="button"
                      class="wf-toggle"
                      tabIndex={-1}
                      aria-label={collapsed.has(s.span_id) ? "Expand" : "Collapse"}
                      onClick={(e) => {
                        e.stopPropagation();
                        toggle(s.span_id);
                      }}
                    >
                      {collapsed.has(s.span_id) ? "▸" : "▾"}
                    </button>
                  ) : (
                    <span class="wf-toggle" />
                  )}
                  <KindIcon kind={s.kind} />
                  <span class="wf-label" title={s.name}>
                    {s.name}
                  </span>
                  {s.orphan && <span class="muted small"> (orphan)</span>}
                </div>
                <div class="wf-track">
                  <span class={`wf-bar kind-${(s.kind || "unknown").toLowerCase()}`} style={{ left: `${left}%`, width: `${width}%` }} />
                  <span class={"wf-dur" + (durInside ? " inside" : "")} style={durStyle}>
                    {ms(s.duration_ms)}
                  </span>
                </div>
              </div>
            );
          })}
        </div>
      </div>
    </div>
  );
}

function Fact({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

function Section({ title, children, open = true }: { title: string; children: ComponentChildren; open?: boolean }) {
  return (
    <details class="section" open={open}>
      <summary>
        <h3>{title}</h3>
      </summary>
      <div class="section-body">{children}</div>
    </details>
  );
}

function SpanPanel({ span, traceId }: { span: Span; traceId: string }) {
  const model = span.response_model || span.request_model;
  const hasUsage = span.input_tokens !== null || span.output_tokens !== null || span.total_tokens !== null;
  return (
    <article class="span-panel" aria-label={`Span ${span.name}`} key={span.span_id}>
      <header class="span-head">
        <KindIcon kind={span.kind} />
        <h2>{span.name}</h2>
        <Status status={span.status} />
        <a class="small" href={`/traces/${traceId}?span=${span.span_id}`} title="Link to this span">
          link
        </a>
      </header>
      {span.status === "error" && (
        <div class="error-box" role="alert">
          <strong>Error</strong> <span class="error-message">{span.status_message || "the span ended with an error status"}</span>
        </div>
      )}
      <dl class="facts">
        <Fact label="Kind">{span.kind}{span.operation ? ` · ${span.operation}` : ""}</Fact>
        <Fact label="Start">{time(span.start_ns)}</Fact>
        <Fact label="Duration">{ms(span.duration_ms)}</Fact>
        {model && <Fact label="Model">{model}{span.provider ? ` (${span.provider})` : ""}</Fact>}
        {hasUsage && (
          <Fact label="Tokens">
            {num(span.input_tokens)} in / {num(span.output_tokens)} out / {num(span.total_tokens)} total
            {span.cache_read_tokens !== null && ` · ${num(span.cache_read_tokens)} cache read`}
            {span.reasoning_tokens !== null && ` · ${num(span.reasoning_tokens)} reasoning`}
            {span.usage_rollup && " (sum of children)"}
          </Fact>
        )}
        {(hasUsage || span.cost_usd !== null) && (
          <Fact label="Cost">
            {usd(span.cost_usd)} <span class="muted">({span.cost_source})</span>
          </Fact>
        )}
        {span.ttft_ms !== null && <Fact label="TTFT">{ms(span.ttft_ms)}</Fact>}
        {span.tokens_per_second !== null && <Fact label="Tokens/s">{num(span.tokens_per_second, 1)}</Fact>}
        {span.finish_reason && <Fact label="Finish">{span.finish_reason}</Fact>}
        {span.prompt_name && <Fact label="Prompt">{span.prompt_name}{span.prompt_version ? ` v${span.prompt_version}` : ""}</Fact>}
        {span.feature && <Fact label="Feature">{span.feature}</Fact>}
        {span.service && <Fact label="Service">{span.service}</Fact>}
        {span.user_id && <Fact label="User">{span.user_id}</Fact>}
        {span.session_id && <Fact label="Session"><a href={`/sessions/${encodeURIComponent(span.session_id)}`}>{span.session_id}</a></Fact>}
        {span.tags && span.tags.length > 0 && <Fact label="Tags"><Tags tags={span.tags} /></Fact>}
        <Fact label="Span id"><code>{span.span_id}</code></Fact>
      </dl>
      {span.scores && span.scores.length > 0 && <Section title="Scores"><Scores scores={span.scores} /></Section>}
      {span.input_messages && span.input_messages.length > 0 ? (
        <Section title="Input"><Chat messages={span.input_messages} label="Input messages" /></Section>
      ) : span.input ? (
        <Section title="Input"><LongText text={span.input} /></Section>
      ) : null}
      {span.output_messages && span.output_messages.length > 0 ? (
        <Section title="Output"><Chat messages={span.output_messages} label="Output messages" /></Section>
      ) : span.output ? (
        <Section title="Output"><LongText text={span.output} /></Section>
      ) : null}
      {span.documents && span.documents.length > 0 && (
        <Section title={`Documents (${span.documents.length})`}><Documents docs={span.documents} /></Section>
      )}
      {!isEmpty(span.logs) && <Section title={`Logs (${span.logs!.length})`} open={false}><JsonTree value={span.logs} /></Section>}
      {!isEmpty(span.events) && <Section title={`Events (${span.events!.length})`} open={false}><JsonTree value={span.events} /></Section>}
      {!isEmpty(span.metadata) && <Section title="Metadata" open={false}><JsonTree value={span.metadata} /></Section>}
      <Section title="Attributes" open={false}><JsonTree value={span.attributes ?? {}} label="Raw attributes" /></Section>
      {!isEmpty(span.resource) && <Section title="Resource" open={false}><JsonTree value={span.resource} /></Section>}
      {!isEmpty(span.links) && <Section title="Links" open={false}><JsonTree value={span.links} /></Section>}
    </article>
  );
}

function Feedback({ traceId, onDone }: { traceId: string; onDone: () => void }) {
  const [error, setError] = useState<Error | null>(null);
  const [busy, setBusy] = useState(false);
  const send = async (value: number) => {
    setBusy(true);
    try {
      await request("/api/v1/feedback", undefined, { method: "POST", body: { trace_id: traceId, value } });
      setError(null);
      onDone();
    } catch (e) {
      setError(e as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <span class="feedback">
      <span class="muted small">Feedback</span>
      <button type="button" disabled={busy} onClick={() => send(1)} aria-label="Thumbs up">
        ▲ Good
      </button>
      <button type="button" disabled={busy} onClick={() => send(-1)} aria-label="Thumbs down">
        ▼ Bad
      </button>
      {error && <ErrorBox error={error} />}
    </span>
  );
}

export function TraceView({ traceId, params }: { traceId: string; params: URLSearchParams }) {
  const id = traceId.toLowerCase();
  const valid = /^[0-9a-f]{32}$/.test(id);
  const res = useLoad(id, (signal) => (valid ? request<TraceDetail>(`/api/v1/traces/${id}`, undefined, { signal }) : Promise.reject(new ApiError(404, "not_found", "bad id"))));
  const spanParam = params.get("span");
  if (res.error instanceof ApiError && res.error.status === 404) return <NotFound what="trace" detail={traceId} />;
  if (res.error) return <ErrorBox error={res.error} retry={res.reload} />;
  if (!res.data) return <Loading what="Loading trace" />;
  const { trace, spans, scores, truncated } = res.data;
  const selected = spans.find((s) => s.span_id === spanParam) || spans[0];
  const totalDur = trace.duration_ms;
  return (
    <section class="trace-view" aria-labelledby="trace-title">
      <div class="page-head">
        <div>
          <p class="crumbs">
            <a href="/traces">Traces</a> / <code>{trace.trace_id}</code>
          </p>
          <h1 id="trace-title">
            {trace.name || "(unnamed trace)"} <Status status={trace.status} />
          </h1>
          <p class="trace-meta">
            {time(trace.start_ns)} · {ms(totalDur)} · {num(trace.span_count)} spans
            {truncated && (
              <span class="bad" role="note">
                {" "}(showing the first {num(spans.length)} by start time; the API's <code>/api/v1/spans?trace_id=</code> lists all)
              </span>
            )}
            {trace.error_count > 0 && <span class="bad"> · {trace.error_count} errors</span>} · {compact(trace.total_tokens)} tokens · {usd(trace.cost_usd)}
            {trace.user_id && <> · user <a href={`/traces?user=${encodeURIComponent(trace.user_id)}`}>{trace.user_id}</a></>}
            {trace.session_id && <> · session <a href={`/sessions/${encodeURIComponent(trace.session_id)}`}>{trace.session_id}</a></>}
            {trace.models && trace.models.length > 0 && <> · {trace.models.join(", ")}</>} <Tags tags={trace.tags} />
          </p>
        </div>
        <Feedback traceId={trace.trace_id} onDone={res.reload} />
      </div>
      {scores.length > 0 && (
        <details class="section" open>
          <summary>
            <h3>Trace scores</h3>
          </summary>
          <Scores scores={scores} />
        </details>
      )}
      <div class="trace-split">
        <Waterfall spans={spans} selected={selected ? selected.span_id : null} onSelect={(sid) => setParams({ span: sid })} />
        {selected ? <SpanPanel span={selected} traceId={trace.trace_id} /> : <p>No spans.</p>}
      </div>
    </section>
  );
}
