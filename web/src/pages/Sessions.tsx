// Sessions: the list, and one session read as a conversation, turn by
// turn (each trace is a turn: its root span's input and output).
import { request } from "../api";
import type { Page, Span, TraceRow } from "../api";
import { Empty, ErrorBox, Loading, LongText, RangePicker, Status } from "../components/common";
import { compact, DASH, ms, rangeFrom, time, usd } from "../format";
import { useLoad } from "../hooks";
import { setParams } from "../router";
import { NotFound } from "./NotFound";
import { ApiError } from "../api";

interface SessionRow {
  session_id: string;
  trace_count: number;
  first_start_ns: number;
  last_end_ns: number;
  user_id: string | null;
  total_tokens: number | null;
  cost_usd: number | null;
  error_count: number;
}

export function Sessions({ params }: { params: URLSearchParams }) {
  const range = params.get("range") || "7d";
  const user = params.get("user") || "";
  const res = useLoad(`${range}|${user}`, (signal) =>
    request<Page<SessionRow>>("/api/v1/sessions", { from: rangeFrom(range), user, limit: 200 }, { signal }),
  );
  return (
    <section aria-labelledby="sessions-title">
      <div class="page-head">
        <h1 id="sessions-title">Sessions</h1>
        <form
          class="toolbar"
          onSubmit={(e) => {
            e.preventDefault();
            setParams({ user: ((e.target as HTMLFormElement).elements.namedItem("user") as HTMLInputElement).value });
          }}
        >
          <RangePicker id="s-range" value={range} onChange={(v) => setParams({ range: v })} />
          <label class="field" for="s-user">
            <span>User</span>
            <input id="s-user" name="user" value={user} placeholder="user id" />
          </label>
          <button type="submit">Apply</button>
        </form>
      </div>
      {res.error && <ErrorBox error={res.error} retry={res.reload} />}
      {!res.data && !res.error && <Loading what="Loading sessions" />}
      {res.data &&
        (res.data.data.length === 0 ? (
          <Empty>No sessions in this range. Spans carry a session id through attributes such as session.id.</Empty>
        ) : (
          <table class="grid" aria-label="Sessions">
            <thead>
              <tr>
                <th scope="col">Session</th>
                <th scope="col">User</th>
                <th scope="col" class="r">Turns</th>
                <th scope="col">Started</th>
                <th scope="col">Last activity</th>
                <th scope="col" class="r">Tokens</th>
                <th scope="col" class="r">Cost</th>
                <th scope="col" class="r">Errors</th>
              </tr>
            </thead>
            <tbody>
              {res.data.data.map((s) => (
                <tr>
                  <td>
                    <a href={`/sessions/${encodeURIComponent(s.session_id)}`}>{s.session_id}</a>
                  </td>
                  <td>{s.user_id || DASH}</td>
                  <td class="r">{s.trace_count}</td>
                  <td>{time(s.first_start_ns)}</td>
                  <td>{time(s.last_end_ns)}</td>
                  <td class="r">{compact(s.total_tokens)}</td>
                  <td class="r">{usd(s.cost_usd)}</td>
                  <td class={"r" + (s.error_count ? " bad" : "")}>{s.error_count}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </section>
  );
}

interface Turn {
  trace: TraceRow;
  root: Span | undefined;
}

async function loadSession(id: string, signal: AbortSignal): Promise<Turn[]> {
  const s = await request<{ session_id: string; traces: TraceRow[] }>(`/api/v1/sessions/${encodeURIComponent(id)}`, undefined, { signal });
  // One request for every turn's text: the session's root spans (input and
  // output come cut to 1,000 characters; the trace view has them whole).
  const spans = await request<Page<Span>>("/api/v1/spans", { session: id, limit: 1000 }, { signal }).catch((e) => {
    if (e.name === "AbortError") throw e;
    return { data: [] as Span[], next_cursor: null };
  });
  const roots = new Map<string, Span>();
  for (const sp of spans.data) {
    const cur = roots.get(sp.trace_id);
    if (!sp.parent_span_id && (!cur || cur.parent_span_id)) roots.set(sp.trace_id, sp);
    else if (!cur) roots.set(sp.trace_id, sp);
  }
  return s.traces.map((t) => ({ trace: t, root: roots.get(t.trace_id) }));
}

export function SessionView({ sessionId }: { sessionId: string }) {
  const res = useLoad(sessionId, (signal) => loadSession(sessionId, signal));
  if (res.error instanceof ApiError && res.error.status === 404) return <NotFound what="session" detail={sessionId} />;
  return (
    <section aria-labelledby="session-title">
      <p class="crumbs">
        <a href="/sessions">Sessions</a> / <code>{sessionId}</code>
      </p>
      <h1 id="session-title">Session {sessionId}</h1>
      {res.error && <ErrorBox error={res.error} retry={res.reload} />}
      {!res.data && !res.error && <Loading what="Loading session" />}
      {res.data && (
        <ol class="turns" aria-label="Conversation">
          {res.data.map(({ trace, root }, i) => (
            <li class={"turn" + (trace.status === "error" ? " error" : "")}>
              <div class="turn-head">
                <span>Turn {i + 1}</span> <a href={`/traces/${trace.trace_id}`}>{trace.name || trace.trace_id}</a> <Status status={trace.status} />
                <span class="muted">
                  {" "}
                  {time(trace.start_ns)} · {ms(trace.duration_ms)} · {compact(trace.total_tokens)} tokens · {usd(trace.cost_usd)}
                  {trace.models.length > 0 && ` · ${trace.models.join(", ")}`}
                </span>
              </div>
              {root && root.input && (
                <div class="bubble user">
                  <span class="role">input</span>
                  <LongText text={root.input} limit={1000} />
                </div>
              )}
              {root && root.output && (
                <div class="bubble assistant">
                  <span class="role">output</span>
                  <LongText text={root.output} limit={1000} />
                </div>
              )}
              {(!root || (!root.input && !root.output)) && <p class="muted">No input or output recorded on this turn's root span.</p>}
            </li>
          ))}
        </ol>
      )}
    </section>
  );
}
