// The llm mode: `loadgen llm -url URL ...` sends OpenAI chat completions
// requests (non-streaming or streaming) and reports latency percentiles,
// and for streams the time to the first content delta, as one JSON object.
//
//	closed loop (default): -conns C keep-alive connections, each sends its
//	  next request as soon as the previous response has been read to the
//	  end; measures the maximum rate.
//	open loop (-rate R): request i is due at t0 + i/R; -conns C connections
//	  take the due requests in order, each waiting until its request's due
//	  time. Latency and TTFT count from the due time, so a stall shows up as
//	  latency of every request it delayed (no coordinated omission, as in
//	  wrk2). The service time (from the actual send) and how late sends
//	  were are reported too.
//
// -warmup D: requests due in the first D are sent but not counted (connection
// set-up on both sides, caches, JIT-less warm paths).
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"
)

type llmResult struct {
	lat, svc, ttft, ttftSvc, lag []time.Duration
	ok, okWarm, sent             int64
	errs                         map[string]int64
	chunks, usageChunks          int64
	bytesIn                      int64
	lastDone                     time.Time
}

type llmConn struct {
	addr    string
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
}

func (c *llmConn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

type llmOutcome struct {
	status      int
	label       string
	firstAt     time.Time // first content delta (streams)
	chunks      int       // content deltas (streams)
	usageChunk  bool
	sawDone     bool
	bytes       int64
	contentSeen bool
}

var (
	contentKey = []byte(`"content"`)
	usageKey   = []byte(`"usage":{`)
	usageKey2  = []byte(`"usage": {`)
)

// hasContent says whether an SSE data payload is a chunk whose first
// choice carries a non-empty content delta (or a tool call delta).
func hasContent(data []byte) bool {
	if !bytes.Contains(data, contentKey) && !bytes.Contains(data, []byte(`"tool_calls"`)) {
		return false
	}
	var ch struct {
		Choices []struct {
			Delta struct {
				Content   *string           `json:"content"`
				ToolCalls []json.RawMessage `json:"tool_calls"`
			} `json:"delta"`
		} `json:"choices"`
	}
	if json.Unmarshal(data, &ch) != nil || len(ch.Choices) == 0 {
		return false
	}
	d := ch.Choices[0].Delta
	return (d.Content != nil && *d.Content != "") || len(d.ToolCalls) > 0
}

// do sends one request. A kept-alive connection the server closed while it
// was idle (its keep-alive timeout) fails on first use before anything is
// received; like any HTTP client, do then reconnects and sends again, once.
func (c *llmConn) do(req []byte, stream bool) llmOutcome {
	reused := c.c != nil
	o := c.do1(req, stream)
	if reused && o.status == 0 && o.bytes == 0 && (o.label == "read_closed" || o.label == "write_closed") {
		o = c.do1(req, stream)
	}
	return o
}

func (c *llmConn) do1(req []byte, stream bool) llmOutcome {
	var o llmOutcome
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			o.label = "connect"
			return o
		}
		if tc, ok := nc.(*net.TCPConn); ok {
			tc.SetNoDelay(true)
		}
		c.c = nc
		c.br = bufio.NewReaderSize(nc, 64<<10)
	}
	c.c.SetDeadline(time.Now().Add(c.timeout))
	if _, err := c.c.Write(req); err != nil {
		c.close()
		o.label = errLabel(err, "write")
		return o
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		o.label = errLabel(err, "read")
		return o
	}
	defer resp.Body.Close()
	o.status = resp.StatusCode
	if !stream || resp.StatusCode != 200 {
		b, err := io.ReadAll(resp.Body)
		o.bytes = int64(len(b))
		if err != nil {
			c.close()
			o.status, o.label = 0, errLabel(err, "read_body")
			return o
		}
		if resp.StatusCode == 200 && !bytes.Contains(b, []byte(`"choices"`)) {
			o.status, o.label = 0, "bad_body"
		}
		if resp.Close {
			c.close()
		}
		return o
	}
	// Server-sent events: lines; "data: " payloads; events end at a blank line.
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	for {
		line, err := br.ReadSlice('\n')
		o.bytes += int64(len(line))
		if len(line) > 5 && bytes.HasPrefix(line, []byte("data:")) {
			data := bytes.TrimSpace(line[5:])
			if bytes.Equal(data, []byte("[DONE]")) {
				o.sawDone = true
			} else if hasContent(data) {
				if !o.contentSeen {
					o.contentSeen = true
					o.firstAt = time.Now()
				}
				o.chunks++
			} else if bytes.Contains(data, usageKey) || bytes.Contains(data, usageKey2) {
				o.usageChunk = true
			}
		}
		if err == bufio.ErrBufferFull {
			continue
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			c.close()
			o.status, o.label = 0, errLabel(err, "read_stream")
			return o
		}
	}
	if !o.sawDone {
		o.status, o.label = 0, "stream_without_done"
	} else if !o.contentSeen {
		o.status, o.label = 0, "stream_without_content"
	}
	if resp.Close {
		c.close()
	}
	return o
}

type headerList []string

func (h *headerList) String() string     { return strings.Join(*h, ", ") }
func (h *headerList) Set(v string) error { *h = append(*h, v); return nil }

// Default request body: a short RAG-style chat request (~1.3 KB).
func defaultBody(model string, stream, includeUsage bool, maxTokens int) []byte {
	ctx := strings.Repeat("Paris is the capital and largest city of France, on the Seine. ", 12)
	m := map[string]any{
		"model": model,
		"messages": []map[string]string{
			{"role": "system", "content": "You are a concise assistant. Answer from the context only."},
			{"role": "user", "content": "Context: " + ctx + "\nQuestion: What is the capital of France?"},
		},
		"temperature": 0.2,
		"max_tokens":  maxTokens,
		"user":        "bench-user",
	}
	if stream {
		m["stream"] = true
		if includeUsage {
			m["stream_options"] = map[string]bool{"include_usage": true}
		}
	}
	b, _ := json.Marshal(m)
	return b
}

func llmMain(args []string) int {
	fs := flag.NewFlagSet("loadgen llm", flag.ExitOnError)
	var (
		target   = fs.String("url", "http://127.0.0.1:9600/v1/chat/completions", "chat completions URL")
		model    = fs.String("model", "fake-model", "model field of the request")
		stream   = fs.Bool("stream", false, "ask for a stream (server-sent events)")
		usage    = fs.Bool("include-usage", false, "streams: ask for stream_options.include_usage")
		maxTok   = fs.Int("max-tokens", 64, "max_tokens field")
		bodyFile = fs.String("body", "", "request body file (default: a built-in chat request)")
		conns    = fs.Int("conns", 16, "keep-alive connections")
		rate     = fs.Float64("rate", 0, "open loop: requests per second (0: closed loop)")
		duration = fs.Duration("duration", 10*time.Second, "measured time (after -warmup)")
		warmup   = fs.Duration("warmup", 2*time.Second, "load before the measured time, not counted")
		timeout  = fs.Duration("timeout", 30*time.Second, "per-request timeout")
		drain    = fs.Duration("drain", 15*time.Second, "after the duration, wait at most this long for in-flight requests")
		quiet    = fs.Bool("quiet", false, "no per-second progress on stderr")
		label    = fs.String("label", "", "copied to the output")
		auth     = fs.String("auth", "sk-bench-not-a-real-key", "bearer token sent in Authorization")
		headers  headerList
	)
	fs.Var(&headers, "H", "extra request header 'Name: value' (repeatable)")
	fs.Parse(args)
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		fmt.Fprintln(os.Stderr, "loadgen llm: -url must be http://host:port/path")
		return 2
	}
	addr := u.Host
	if !strings.Contains(addr, ":") {
		addr += ":80"
	}
	var body []byte
	if *bodyFile != "" {
		if body, err = os.ReadFile(*bodyFile); err != nil {
			fmt.Fprintln(os.Stderr, "loadgen llm:", err)
			return 2
		}
	} else {
		body = defaultBody(*model, *stream, *usage, *maxTok)
	}
	var hb strings.Builder
	hb.WriteString("POST " + u.RequestURI() + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: lanterna-loadgen\r\nContent-Type: application/json\r\nAccept: ")
	if *stream {
		hb.WriteString("text/event-stream")
	} else {
		hb.WriteString("application/json")
	}
	hb.WriteString("\r\nAuthorization: Bearer " + *auth)
	for _, h := range headers {
		hb.WriteString("\r\n" + h)
	}
	hb.WriteString("\r\nContent-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n")
	req := append([]byte(hb.String()), body...)

	open := *rate > 0
	var interval time.Duration
	if open {
		interval = time.Duration(1e9 / *rate)
	}
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(*warmup)
	stop := measureFrom.Add(*duration)
	hardStop := stop.Add(*drain)
	var seq atomic.Int64
	var okCount atomic.Int64
	results := make([]llmResult, *conns)
	cpu0 := cpuSeconds()
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			r := &results[w]
			r.errs = map[string]int64{}
			c := &llmConn{addr: addr, timeout: *timeout}
			defer c.close()
			var timer *preciseTimer
			if open {
				timer = newPreciseTimer()
				defer timer.close()
			}
			for {
				var due time.Time
				if open {
					s := seq.Add(1) - 1
					due = start.Add(time.Duration(s) * interval)
					if !due.Before(stop) {
						return
					}
					timer.sleepUntil(due)
				} else {
					if d := time.Until(start); d > 0 {
						time.Sleep(d)
					}
					due = time.Now()
					if !due.Before(stop) {
						return
					}
				}
				sent := time.Now()
				if sent.After(hardStop) {
					r.errs["not_sent_drain"]++
					continue
				}
				r.sent++
				o := c.do(req, *stream)
				done := time.Now()
				counted := !due.Before(measureFrom)
				r.bytesIn += o.bytes
				if o.status == 200 {
					okCount.Add(1)
					if !counted {
						r.okWarm++
						continue
					}
					r.ok++
					r.lastDone = done
					r.lat = append(r.lat, done.Sub(due))
					r.svc = append(r.svc, done.Sub(sent))
					r.lag = append(r.lag, sent.Sub(due))
					if *stream {
						r.ttft = append(r.ttft, o.firstAt.Sub(due))
						r.ttftSvc = append(r.ttftSvc, o.firstAt.Sub(sent))
						r.chunks += int64(o.chunks)
						if o.usageChunk {
							r.usageChunks++
						}
					}
				} else {
					l := o.label
					if o.status != 0 {
						l = strconv.Itoa(o.status)
					}
					if counted {
						r.errs[l]++
					} else {
						r.errs["warmup_"+l]++
					}
					if !open {
						time.Sleep(20 * time.Millisecond)
					}
				}
			}
		}(w)
	}
	doneCh := make(chan struct{})
	go func() { wg.Wait(); close(doneCh) }()
	tick := time.NewTicker(time.Second)
	var timeline []int64
	var prev int64
	sec := 0
loop:
	for {
		select {
		case <-doneCh:
			break loop
		case <-tick.C:
			cur := okCount.Load()
			timeline = append(timeline, cur-prev)
			sec++
			if !*quiet {
				fmt.Fprintf(os.Stderr, "  [%3ds] %7d req/s ok\n", sec, cur-prev)
			}
			prev = cur
		}
	}
	tick.Stop()
	cpu1 := cpuSeconds()

	var lat, svc, ttft, ttftSvc, lag []time.Duration
	var ok, sent, chunks, usageChunks, bytesIn int64
	errs := map[string]int64{}
	last := measureFrom
	for _, r := range results {
		lat = append(lat, r.lat...)
		svc = append(svc, r.svc...)
		ttft = append(ttft, r.ttft...)
		ttftSvc = append(ttftSvc, r.ttftSvc...)
		lag = append(lag, r.lag...)
		ok += r.ok
		sent += r.sent
		chunks += r.chunks
		usageChunks += r.usageChunks
		bytesIn += r.bytesIn
		for k, v := range r.errs {
			errs[k] += v
		}
		if r.lastDone.After(last) {
			last = r.lastDone
		}
	}
	// The measured window: from the end of the warm-up to the later of the
	// planned stop and the last counted response.
	if stop.After(last) {
		last = stop
	}
	window := last.Sub(measureFrom).Seconds()
	var failed int64
	for k, v := range errs {
		if !strings.HasPrefix(k, "warmup_") {
			failed += v
		}
	}
	mode := "closed"
	if open {
		mode = "open"
	}
	out := map[string]any{
		"label": *label, "mode": mode, "url": *target, "stream": *stream, "include_usage": *usage,
		"conns": *conns, "target_rate": *rate, "duration_s": duration.Seconds(), "warmup_s": warmup.Seconds(),
		"request_bytes": len(body), "requests_ok": ok, "requests_failed": failed, "requests_sent": sent, "errors": errs,
		"window_s": round3(window), "requests_per_s": round3(float64(ok) / window),
		"latency_ms": dist(lat), "service_ms": dist(svc),
		"loadgen_cpu_s": round3(cpu1 - cpu0), "timeline_req_per_s": timeline,
		"response_bytes_per_req": round3(float64(bytesIn) / float64(max64(1, ok))),
	}
	if open {
		out["send_lag_ms"] = dist(lag)
	}
	if *stream {
		out["ttft_ms"] = dist(ttft)
		out["ttft_service_ms"] = dist(ttftSvc)
		out["content_chunks_per_stream"] = round3(float64(chunks) / float64(max64(1, ok)))
		out["streams_with_usage_chunk"] = usageChunks
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.Encode(out)
	d := out["latency_ms"].(map[string]float64)
	fmt.Fprintf(os.Stderr, "%s loop %s, %d conns: %d ok in %.1fs = %.0f req/s; latency p50 %.3f p99 %.3f max %.3f ms; errors %v; loadgen cpu %.1fs\n",
		mode, map[bool]string{true: "stream", false: "non-stream"}[*stream], *conns, ok, window,
		float64(ok)/window, d["p50"], d["p99"], d["max"], errs, cpu1-cpu0)
	return 0
}

// A precise sleep. The Go runtime's timers wake up to a millisecond late
// (its poller waits in whole milliseconds), which would put ~0.5 ms of noise
// into every sub-millisecond figure, and a blocking nanosleep(2) holds a
// scheduler slot. A timerfd watched by the runtime's poller has neither
// problem: the poller wakes as soon as the kernel timer fires.
type preciseTimer struct {
	f   *os.File
	buf [8]byte
}

func newPreciseTimer() *preciseTimer {
	const tfdNonblock, tfdCloexec = syscall.O_NONBLOCK, syscall.O_CLOEXEC
	fd, _, e := syscall.Syscall(syscall.SYS_TIMERFD_CREATE, 1 /* CLOCK_MONOTONIC */, tfdNonblock|tfdCloexec, 0)
	if e != 0 {
		return nil
	}
	return &preciseTimer{f: os.NewFile(fd, "timerfd")}
}

// sleepUntil waits until t (a plain time.Sleep when no timerfd could be made).
func (p *preciseTimer) sleepUntil(t time.Time) {
	d := time.Until(t)
	if d <= 0 {
		return
	}
	if p == nil {
		time.Sleep(d)
		return
	}
	var spec [4]int64 // struct itimerspec: interval {sec, nsec}, value {sec, nsec}
	spec[2], spec[3] = int64(d/time.Second), int64(d%time.Second)
	if _, _, e := syscall.Syscall6(syscall.SYS_TIMERFD_SETTIME, p.f.Fd(), 0, uintptr(unsafe.Pointer(&spec[0])), 0, 0, 0); e != 0 {
		time.Sleep(d)
		return
	}
	p.f.Read(p.buf[:])
}

func (p *preciseTimer) close() {
	if p != nil {
		p.f.Close()
	}
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// dist: exact percentiles (all samples kept and sorted), in milliseconds
// with microsecond resolution.
func dist(v []time.Duration) map[string]float64 {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	var sum float64
	for _, d := range v {
		sum += float64(d)
	}
	mean := -1.0
	if len(v) > 0 {
		mean = sum / float64(len(v)) / 1e6
	}
	return map[string]float64{
		"p50": round3(pct(v, 0.50)), "p90": round3(pct(v, 0.90)), "p99": round3(pct(v, 0.99)),
		"p999": round3(pct(v, 0.999)), "max": round3(pct(v, 1.0)), "mean": round3(mean),
		"n": float64(len(v)),
	}
}
