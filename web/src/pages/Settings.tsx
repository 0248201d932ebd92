// Settings: the browser's API key, price overrides, unpriced models and
// server counters. Projects and keys are managed with the CLI until the
// admin login lands.
import { useState } from "preact/hooks";
import { apiKey, request, setApiKey } from "../api";
import { Empty, ErrorBox, Loading } from "../components/common";
import { compact, num } from "../format";
import { useLoad } from "../hooks";

function ApiKey() {
  const [value, setValue] = useState(apiKey());
  const [note, setNote] = useState<string>("");
  const [error, setError] = useState<Error | null>(null);
  const test = async () => {
    setNote("");
    setError(null);
    try {
      await request("/api/v1/stats");
      setNote(apiKey() ? "The saved key works." : "The server answers without a key (loopback default).");
    } catch (e) {
      setError(e as Error);
    }
  };
  return (
    <section class="panel" aria-labelledby="key-title">
      <h2 id="key-title">API key for this browser</h2>
      <p class="muted">
        On the default loopback address no key is needed. When the server requires keys, paste a secret key (sk-lt-…) here: it is kept in
        this browser's local storage and sent as <code>Authorization: Bearer</code> with every API call.
      </p>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          setApiKey(value.trim());
          setNote(value.trim() ? "Saved." : "Cleared.");
          setError(null);
        }}
      >
        <label class="field grow" for="api-key">
          <span>Secret key</span>
          <input id="api-key" type="password" autoComplete="off" spellcheck={false} value={value} placeholder="sk-lt-…" onInput={(e) => setValue((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Save</button>
        <button
          type="button"
          onClick={() => {
            setValue("");
            setApiKey("");
            setNote("Cleared.");
          }}
        >
          Clear
        </button>
        <button type="button" onClick={test}>
          Test
        </button>
      </form>
      {note && <p role="status">{note}</p>}
      {error && <ErrorBox error={error} />}
    </section>
  );
}

const EXAMPLE = `{"version":1,"models":[{"match":"my-finetune-*","provider":"openai","input":3.0,"output":12.0}]}`;

interface PriceInfo {
  entries: number;
  model?: string;
  price?: unknown;
  overrides?: unknown[];
}

function Prices() {
  const [tick, setTick] = useState(0);
  const res = useLoad(String(tick), (signal) => request<PriceInfo>("/api/v1/prices", undefined, { signal }));
  const [body, setBody] = useState("");
  const [error, setError] = useState<Error | null>(null);
  const [note, setNote] = useState("");
  const [confirm, setConfirm] = useState(false);
  const [model, setModel] = useState("");
  const [provider, setProvider] = useState("");
  const [lookup, setLookup] = useState<PriceInfo | null>(null);
  const act = async (fn: () => Promise<unknown>, done: string) => {
    setError(null);
    setNote("");
    try {
      await fn();
      setNote(done);
      setTick((t) => t + 1);
    } catch (e) {
      setError(e as Error);
    }
  };
  const overrides = res.data && res.data.overrides ? res.data.overrides : [];
  return (
    <section class="panel" aria-labelledby="prices-title">
      <h2 id="prices-title">Prices</h2>
      <p class="muted">
        Costs are computed at ingest from the shipped price table{res.data ? ` (${num(res.data.entries)} entries)` : ""}. Overrides added here apply
        to this project's spans ingested from now on; stored spans keep their cost.
      </p>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => setLookup(await request<PriceInfo>("/api/v1/prices", { model, provider })), "");
        }}
      >
        <label class="field" for="p-model">
          <span>Model</span>
          <input id="p-model" value={model} required placeholder="gpt-4o-mini" onInput={(e) => setModel((e.target as HTMLInputElement).value)} />
        </label>
        <label class="field" for="p-provider">
          <span>Provider</span>
          <input id="p-provider" value={provider} placeholder="openai" onInput={(e) => setProvider((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Look up price</button>
      </form>
      {lookup && (
        <div class="lookup">
          {lookup.price ? (
            <dl class="facts" aria-label="Price">
              {Object.entries(lookup.price as Record<string, unknown>).map(([k, v]) => (
                <>
                  <dt>{k}</dt>
                  <dd>{String(v)}</dd>
                </>
              ))}
            </dl>
          ) : (
            <p>No price matches {lookup.model}.</p>
          )}
        </div>
      )}
      <h3>Overrides for this project</h3>
      {res.error && <ErrorBox error={res.error} retry={() => setTick((t) => t + 1)} />}
      {res.data && (overrides.length ? <OverrideTable layers={overrides} /> : <Empty>No overrides.</Empty>)}
      <form
        onSubmit={(e) => {
          e.preventDefault();
          act(() => request("/api/v1/prices", undefined, { method: "POST", body: body }), "Override added.");
        }}
      >
        <label class="field" for="p-body">
          <span>Add an override layer (price file JSON, see docs/prices.md)</span>
          <textarea id="p-body" rows={5} value={body} placeholder={EXAMPLE} onInput={(e) => setBody((e.target as HTMLTextAreaElement).value)} />
        </label>
        <div class="row">
          <button type="submit" disabled={!body.trim()}>
            Add override
          </button>
          {!confirm ? (
            <button type="button" disabled={!overrides.length} onClick={() => setConfirm(true)}>
              Delete all overrides…
            </button>
          ) : (
            <>
              <button
                type="button"
                class="danger"
                onClick={() => {
                  setConfirm(false);
                  act(() => request("/api/v1/prices", undefined, { method: "DELETE" }), "Overrides deleted.");
                }}
              >
                Confirm: delete every override
              </button>
              <button type="button" onClick={() => setConfirm(false)}>
                Cancel
              </button>
            </>
          )}
        </div>
      </form>
      {note && <p role="status">{note}</p>}
      {error && <ErrorBox error={error} />}
    </section>
  );
}

interface PriceEntry {
  match?: string;
  provider?: string;
  input?: number;
  output?: number;
  [k: string]: unknown;
}

// Override layers are price files (docs/prices.md): one row per entry.
function OverrideTable({ layers }: { layers: unknown[] }) {
  const rows: Array<[number, PriceEntry]> = [];
  layers.forEach((l, i) => {
    const models = l && typeof l === "object" ? (l as { models?: PriceEntry[] }).models : null;
    (models || []).forEach((m) => rows.push([i + 1, m]));
  });
  return (
    <table class="grid" aria-label="Price overrides">
      <thead>
        <tr>
          <th scope="col">Layer</th>
          <th scope="col">Match</th>
          <th scope="col">Provider</th>
          <th scope="col" class="r">Input $/M</th>
          <th scope="col" class="r">Output $/M</th>
          <th scope="col">Other</th>
        </tr>
      </thead>
      <tbody>
        {rows.map(([layer, m]) => {
          const { match, provider, input, output, ...rest } = m;
          return (
            <tr>
              <td>{layer}</td>
              <td>
                <code>{match}</code>
              </td>
              <td>{provider || ""}</td>
              <td class="r">{input ?? ""}</td>
              <td class="r">{output ?? ""}</td>
              <td>{Object.keys(rest).length ? JSON.stringify(rest) : ""}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  );
}

interface Unpriced {
  provider: string | null;
  model: string;
  spans: number;
  input_tokens: number;
  output_tokens: number;
  first_day: string;
  last_day: string;
  priced_now: boolean;
}

function UnpricedModels() {
  const res = useLoad("unpriced", (signal) => request<{ data: Unpriced[] }>("/api/v1/models/unpriced", undefined, { signal }));
  return (
    <section class="panel" aria-labelledby="unpriced-title">
      <h2 id="unpriced-title">Models without a price (last 30 days)</h2>
      {res.error && <ErrorBox error={res.error} retry={res.reload} />}
      {!res.data && !res.error && <Loading />}
      {res.data &&
        (res.data.data.length === 0 ? (
          <Empty>Every model seen has a price.</Empty>
        ) : (
          <table class="grid" aria-label="Unpriced models">
            <thead>
              <tr>
                <th scope="col">Model</th>
                <th scope="col">Provider</th>
                <th scope="col" class="r">Spans</th>
                <th scope="col" class="r">Input tokens</th>
                <th scope="col" class="r">Output tokens</th>
                <th scope="col">Seen</th>
                <th scope="col">Priced now</th>
              </tr>
            </thead>
            <tbody>
              {res.data.data.map((u) => (
                <tr>
                  <td>{u.model}</td>
                  <td>{u.provider || ""}</td>
                  <td class="r">{num(u.spans)}</td>
                  <td class="r">{compact(u.input_tokens)}</td>
                  <td class="r">{compact(u.output_tokens)}</td>
                  <td>
                    {u.first_day} – {u.last_day}
                  </td>
                  <td>{u.priced_now ? "yes" : "no"}</td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
    </section>
  );
}

function Stats() {
  const res = useLoad("stats", (signal) => request<{ store: Record<string, number>; writer: Record<string, number> }>("/api/v1/stats", undefined, { signal }));
  return (
    <section class="panel" aria-labelledby="stats-title">
      <h2 id="stats-title">Server</h2>
      {res.error && <ErrorBox error={res.error} retry={res.reload} />}
      {res.data && (
        <dl class="facts">
          <dt>Spans</dt>
          <dd>{num(res.data.store.spans)}</dd>
          <dt>Traces</dt>
          <dd>{num(res.data.store.traces)}</dd>
          <dt>Database</dt>
          <dd>{compact(res.data.store.db_bytes)}B</dd>
          <dt>Write queue</dt>
          <dd>{num(res.data.writer.queue_records)} records</dd>
        </dl>
      )}
    </section>
  );
}

export function Settings() {
  return (
    <section aria-labelledby="settings-title">
      <h1 id="settings-title">Settings</h1>
      <ApiKey />
      <section class="panel" aria-labelledby="keys-title">
        <h2 id="keys-title">Projects and API keys</h2>
        <p>
          Creating and revoking keys from the browser comes with the admin login. Until then use the command line:{" "}
          <code>lanterna projects create NAME</code>, <code>lanterna keys create --project NAME</code>, <code>lanterna keys revoke PUBLIC_KEY</code>.
        </p>
      </section>
      <Prices />
      <UnpricedModels />
      <Stats />
    </section>
  );
}
