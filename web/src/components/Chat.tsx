// Renders normalised chat messages (docs/semconv.md): role, text or content
// parts, tool calls with their JSON arguments, tool results.
import type { Doc, Message } from "../api";
import { LongText } from "./common";
import { JsonTree } from "./JsonTree";

function pretty(args: string | undefined): string {
  if (!args) return "";
  try {
    return JSON.stringify(JSON.parse(args), null, 2);
  } catch {
    return args;
  }
}

function Content({ content }: { content: Message["content"] }) {
  if (content === null || content === undefined || content === "") return null;
  if (typeof content === "string") return <LongText text={content} />;
  if (!Array.isArray(content)) return <JsonTree value={content} />;
  return (
    <div class="parts">
      {content.map((p) => {
        const type = String(p.type || "");
        if (type === "text" && typeof p.text === "string") return <LongText text={p.text} />;
        if (type === "image" || p.url)
          // Shown as text: the UI works offline and loads nothing external.
          return <div class="part-image">image: {String(p.url || p.mime_type || "inline data")}</div>;
        return <JsonTree value={p} />;
      })}
    </div>
  );
}

export function Chat({ messages, label }: { messages: Message[]; label: string }) {
  return (
    <ol class="chat" aria-label={label}>
      {messages.map((m) => {
        const role = m.role || "unknown";
        return (
          <li class={`msg msg-${role.replace(/[^a-z_-]/gi, "")}`}>
            <div class="msg-head">
              <span class="role">{role}</span>
              {m.name && <span class="muted"> {m.name}</span>}
              {m.tool_call_id && <span class="muted"> → call {m.tool_call_id}</span>}
            </div>
            <Content content={m.content} />
            {m.tool_calls && m.tool_calls.length > 0 && (
              <ul class="tool-calls" aria-label="tool calls">
                {m.tool_calls.map((c) => (
                  <li class="tool-call">
                    <div>
                      <span class="tool-icon" aria-hidden="true">ƒ</span> <strong>{c.name || "tool"}</strong>
                      {c.id && <span class="muted"> ({c.id})</span>}
                    </div>
                    {c.arguments && <LongText text={pretty(c.arguments)} />}
                  </li>
                ))}
              </ul>
            )}
          </li>
        );
      })}
    </ol>
  );
}

export function Documents({ docs }: { docs: Doc[] }) {
  return (
    <ol class="docs" aria-label="retrieved documents">
      {docs.map((d, i) => (
        <li class="doc">
          <div class="doc-head">
            <span>#{i + 1}</span> <strong>{d.id || "document"}</strong>
            {typeof d.score === "number" && (
              <span class="doc-score" title="retrieval score">
                score {d.score.toFixed(3)}
              </span>
            )}
          </div>
          {d.content && <LongText text={String(d.content)} limit={600} />}
          {d.metadata !== undefined && d.metadata !== null && (
            <details>
              <summary>metadata</summary>
              <JsonTree value={d.metadata} />
            </details>
          )}
        </li>
      ))}
    </ol>
  );
}
