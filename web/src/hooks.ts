import { useCallback, useEffect, useRef, useState } from "preact/hooks";

export interface Loaded<T> {
  data: T | null;
  error: Error | null;
  loading: boolean;
  reload: () => void;
}

// Runs load() whenever key changes (and on reload()); a newer load aborts
// and supersedes an older one, so a slow answer never overwrites a fresh one.
export function useLoad<T>(key: string, load: (signal: AbortSignal) => Promise<T>): Loaded<T> {
  const [state, setState] = useState<{ data: T | null; error: Error | null; loading: boolean }>({ data: null, error: null, loading: true });
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  useEffect(() => {
    const ctl = new AbortController();
    setState((s) => ({ ...s, loading: true }));
    loadRef.current(ctl.signal).then(
      (data) => !ctl.signal.aborted && setState({ data, error: null, loading: false }),
      (error) => !ctl.signal.aborted && error.name !== "AbortError" && setState((s) => ({ data: s.data, error, loading: false })),
    );
    return () => ctl.abort();
  }, [key, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

export function useInterval(fn: () => void, msPeriod: number | null): void {
  const ref = useRef(fn);
  ref.current = fn;
  useEffect(() => {
    if (!msPeriod) return;
    const id = setInterval(() => ref.current(), msPeriod);
    return () => clearInterval(id);
  }, [msPeriod]);
}
