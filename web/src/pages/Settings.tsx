// Settings: the browser's API key, projects and API keys (list, create,
// revoke; an admin login or the loopback default), price overrides,
// unpriced models and server counters.
import { useState } from "preact/hooks";
import { ApiError, apiKey, request, setApiKey } from "../api";
import { Empty, ErrorBox, Loading } from "../components/common";
import { compact, num, time } from "../format";
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
        On the default loopback address no key is needed. When the server requires authentication, log in with an admin account, or paste a
        secret key (sk-lt-…) here: it is kept in this browser's local storage and sent as <code>Authorization: Bearer</code> with every API call
        (instead of the login), and this browser sees that key's project.
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

interface Project {
  id: number;
  name: string;
  created_ns: number;
}

interface Key {
  id: number;
  public_key: string;
  project: string;
  created_ns: number;
  revoked_ns: number | null;
}

interface NewKey {
  project: string;
  public_key: string;
  secret_key: string;
}

// The secret of a key just made: shown once, with a copy button.
function NewSecret({ k, onClose }: { k: NewKey; onClose: () => void }) {
  const [copied, setCopied] = useState("");
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(k.secret_key);
      setCopied("Copied.");
    } catch {
      const el = document.getElementById("new-secret");
      if (el) window.getSelection()?.selectAllChildren(el);
      setCopied("Select the key and copy it (the clipboard is not available here).");
    }
  };
  return (
    <div class="secret" role="region" aria-label="New API key">
      <div>
        <strong>Copy the secret key now: it is shown only once.</strong>
        <div class="muted small">
          Project {k.project}, public key <code>{k.public_key}</code>. Send it as <code>Authorization: Bearer …</code>.
        </div>
        <code id="new-secret" aria-label="Secret key value">{k.secret_key}</code>
      </div>
      <button type="button" onClick={copy}>
        Copy secret key
      </button>
      <button type="button" onClick={onClose}>
        Done
      </button>
      {copied && <span role="status">{copied}</span>}
    </div>
  );
}

function ProjectsAndKeys() {
  const [tick, setTick] = useState(0);
  const projects = useLoad("p" + tick, (signal) => request<{ data: Project[] }>("/api/v1/projects", undefined, { signal }));
  const keys = useLoad("k" + tick, (signal) => request<{ data: Key[] }>("/api/v1/keys", undefined, { signal }));
  const [name, setName] = useState("");
  const [keyProject, setKeyProject] = useState("default");
  const [created, setCreated] = useState<NewKey | null>(null);
  const [confirm, setConfirm] = useState("");
  const [note, setNote] = useState("");
  const [error, setError] = useState<Error | null>(null);
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
  const refused = [projects.error, keys.error].find((e) => e instanceof ApiError && e.status === 403);
  if (refused) {
    return (
      <section class="panel" aria-labelledby="keys-title">
        <h2 id="keys-title">Projects and API keys</h2>
        <p>
          This browser uses a project API key, which cannot manage projects and keys. Log in with an admin account (clear the key above), or use the
          command line: <code>lanterna projects create NAME</code>, <code>lanterna keys create --project NAME</code>, <code>lanterna keys revoke PUBLIC_KEY</code>.
        </p>
      </section>
    );
  }
  const list = projects.data ? projects.data.data : [];
  return (
    <section class="panel" aria-labelledby="keys-title">
      <h2 id="keys-title">Projects and API keys</h2>
      <p class="muted">
        A project keeps its data apart: an API key reads and writes only its own project. Keys are shown with their public part; a secret key is shown once,
        when it is made.
      </p>
      <h3>Projects</h3>
      {projects.error && <ErrorBox error={projects.error} retry={projects.reload} />}
      {!projects.data && !projects.error && <Loading />}
      {projects.data && (
        <table class="grid" aria-label="Projects">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col" class="r">Id</th>
              <th scope="col">Created</th>
              <th scope="col" class="r">Active keys</th>
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr>
                <td>{p.name}</td>
                <td class="r">{p.id}</td>
                <td>{time(p.created_ns)}</td>
                <td class="r">{keys.data ? keys.data.data.filter((k) => k.project === p.name && !k.revoked_ns).length : ""}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          const n = name.trim();
          act(async () => {
            await request("/api/v1/projects", undefined, { method: "POST", body: { name: n } });
            setName("");
            setKeyProject(n);
          }, `Project ${n} created.`);
        }}
      >
        <label class="field" for="new-project">
          <span>New project name</span>
          <input id="new-project" value={name} required maxLength={100} pattern="[A-Za-z0-9._\-]+" title="letters, digits, '-', '_' or '.'" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        </label>
        <button type="submit">Create project</button>
      </form>

      <h3>API keys</h3>
      {keys.error && <ErrorBox error={keys.error} retry={keys.reload} />}
      {keys.data &&
        (keys.data.data.length === 0 ? (
          <Empty>No API keys yet.</Empty>
        ) : (
          <table class="grid" aria-label="API keys">
            <thead>
              <tr>
                <th scope="col">Public key</th>
                <th scope="col">Project</th>
                <th scope="col">Created</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span class="muted">Action</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {keys.data.data.map((k) => (
                <tr data-key={k.public_key}>
                  <td>
                    <code>{k.public_key}</code>
                  </td>
                  <td>{k.project}</td>
                  <td>{time(k.created_ns)}</td>
                  <td>{k.revoked_ns ? <span class="bad">revoked {time(k.revoked_ns)}</span> : "active"}</td>
                  <td>
                    {!k.revoked_ns &&
                      (confirm === k.public_key ? (
                        <>
                          <button
                            type="button"
                            class="danger"
                            onClick={() => {
                              setConfirm("");
                              act(() => request(`/api/v1/keys/${encodeURIComponent(k.public_key)}`, undefined, { method: "DELETE" }), `Key ${k.public_key} revoked.`);
                            }}
                          >
                            Confirm revoke
                          </button>
                          <button type="button" onClick={() => setConfirm("")}>
                            Cancel
                          </button>
                        </>
                      ) : (
                        <button type="button" aria-label={`Revoke ${k.public_key}`} onClick={() => setConfirm(k.public_key)}>
                          Revoke…
                        </button>
                      ))}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        ))}
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          act(async () => setCreated(await request<NewKey>("/api/v1/keys", undefined, { method: "POST", body: { project: keyProject } })), "Key created.");
        }}
      >
        <label class="field" for="key-project">
          <span>Project of the new key</span>
          <select id="key-project" value={keyProject} onChange={(e) => setKeyProject((e.target as HTMLSelectElement).value)}>
            {(list.length ? list : [{ id: 1, name: "default", created_ns: 0 }]).map((p) => (
              <option value={p.name}>{p.name}</option>
            ))}
          </select>
        </label>
        <button type="submit">Create key</button>
      </form>
      {created && <NewSecret k={created} onClose={() => setCreated(null)} />}
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
      <ProjectsAndKeys />
      <Prices />
      <UnpricedModels />
      <Stats />
    </section>
  );
}
