// The login page, shown when the server requires authentication and this
// browser has neither a session nor a pasted API key. A login sets an
// HttpOnly session cookie; nothing secret is kept in JavaScript.
import { useState } from "preact/hooks";
import { login, setApiKey } from "../api";
import { ErrorBox } from "../components/common";

export function Login({ onDone, expired }: { onDone: () => void; expired?: boolean }) {
  const [name, setName] = useState("");
  const [password, setPassword] = useState("");
  const [key, setKey] = useState("");
  const [useKey, setUseKey] = useState(false);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<Error | null>(null);
  const submit = async (e: Event) => {
    e.preventDefault();
    setError(null);
    if (useKey) {
      setApiKey(key.trim());
      onDone();
      return;
    }
    setBusy(true);
    try {
      await login(name.trim(), password);
      setPassword("");
      onDone();
    } catch (err) {
      setError(err as Error);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main id="main" class="login" tabIndex={-1}>
      <form class="panel login-box" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">Log in to Lanterna</h1>
        {expired && <p role="status">Your session has ended. Log in again.</p>}
        {!useKey ? (
          <>
            <p class="muted small">
              With an admin account made by <code>lanterna users create NAME</code>.
            </p>
            <label class="field" for="login-name">
              <span>User name</span>
              <input id="login-name" autoComplete="username" required value={name} onInput={(e) => setName((e.target as HTMLInputElement).value)} />
            </label>
            <label class="field" for="login-password">
              <span>Password</span>
              <input id="login-password" type="password" autoComplete="current-password" required value={password} onInput={(e) => setPassword((e.target as HTMLInputElement).value)} />
            </label>
          </>
        ) : (
          <label class="field" for="login-key">
            <span>Secret key</span>
            <input id="login-key" type="password" autoComplete="off" spellcheck={false} required placeholder="sk-lt-…" value={key} onInput={(e) => setKey((e.target as HTMLInputElement).value)} />
          </label>
        )}
        <div class="row">
          <button type="submit" disabled={busy}>
            {useKey ? "Use this key" : busy ? "Logging in…" : "Log in"}
          </button>
          <button type="button" class="link" onClick={() => { setUseKey(!useKey); setError(null); }}>
            {useKey ? "Log in with a user name instead" : "Use an API key instead"}
          </button>
        </div>
        {error && <ErrorBox error={error} />}
      </form>
    </main>
  );
}
