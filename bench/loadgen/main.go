// Command loadgen sends pre-generated OTLP/protobuf ExportTraceServiceRequest
// bodies to an OTLP/HTTP endpoint and reports acknowledged spans/s and request
// latency. Standard library only.
//
// Two modes:
//
//	closed loop (default): K keep-alive connections, each sends its next request
//	  as soon as the previous response arrived; measures the maximum rate.
//	open loop (-rate SPANS_PER_S): requests are scheduled at fixed intervals
//	  (request i at t0 + i*interval, interval = mean spans per request / rate) and
//	  served by K connections in order; latency is measured from the scheduled
//	  time, so a stalled server shows up as latency instead of a slower sender
//	  (no coordinated omission, as in wrk2).
//
// Every send is unique: the bodies are walked once (protobuf wire format) to
// find every trace id, span id, parent span id and link id, and each resend of
// a body XORs them with a key derived from (-id-seed, round). Tree structure is
// kept (all occurrences of an id change the same way); round 0 with -id-seed 0
// keeps the files' ids. With -now-times, times (span start and end, event
// times) are moved by one offset per send so the request's latest span
// starts at the send time; by default they are sent as generated.
//
// Only 200 responses count as acknowledged. Output: one JSON object on stdout,
// a human summary and per-second progress on stderr.
//
// -sink ADDR runs a trivial OTLP sink instead (answers 200 after reading the
// body), to check how fast the load generator itself is.
//
// `loadgen llm ...` is a separate mode for OpenAI chat completions (the proxy
// benchmark); see llm.go.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type payload struct {
	name     string
	body     []byte
	spans    int
	traceOff []int // offsets of 16-byte trace ids
	spanOff  []int // offsets of 8-byte span ids (span, parent, link)
	timeOff  []int // offsets of fixed64 times (span start/end, event time)
	minStart uint64
	maxStart uint64
}

// ---- protobuf wire walking -------------------------------------------------

// fixed64s calls fn(fieldNumber, offset) for each fixed64 field of the
// message in b[lo:hi] (the caller has walked it with fields already).
func fixed64s(b []byte, lo, hi int, fn func(num, off int)) {
	_ = walk(b, lo, hi, func(num int, wt uint64, s, _ int) error {
		if wt == 1 {
			fn(num, s)
		}
		return nil
	})
}

func varint(b []byte, i int) (uint64, int, error) {
	var v uint64
	for s := uint(0); s < 64; s += 7 {
		if i >= len(b) {
			return 0, 0, errors.New("truncated varint")
		}
		c := b[i]
		i++
		v |= uint64(c&0x7f) << s
		if c < 0x80 {
			return v, i, nil
		}
	}
	return 0, 0, errors.New("varint too long")
}

// fields calls fn(fieldNumber, start, end) for each length-delimited field of
// the message in b[lo:hi]; other wire types are skipped.
func fields(b []byte, lo, hi int, fn func(num int, s, e int) error) error {
	return walk(b, lo, hi, func(num int, wt uint64, s, e int) error {
		if wt != 2 {
			return nil
		}
		return fn(num, s, e)
	})
}

// walk calls fn(fieldNumber, wireType, start, end) for each length-delimited
// field (its payload) and fixed64 field (its 8 bytes) of the message in
// b[lo:hi]; varints and fixed32s are skipped.
func walk(b []byte, lo, hi int, fn func(num int, wt uint64, s, e int) error) error {
	i := lo
	for i < hi {
		tag, j, err := varint(b, i)
		if err != nil {
			return err
		}
		i = j
		num, wt := int(tag>>3), tag&7
		n := 0
		switch wt {
		case 0:
			if _, i, err = varint(b, i); err != nil {
				return err
			}
			continue
		case 1:
			n = 8
		case 5:
			i += 4
			continue
		case 2:
			l, j, err := varint(b, i)
			if err != nil {
				return err
			}
			i, n = j, int(l)
		default:
			return fmt.Errorf("unsupported wire type %d", wt)
		}
		if i+n > hi {
			return errors.New("truncated field")
		}
		if err := fn(num, wt, i, i+n); err != nil {
			return err
		}
		i += n
	}
	if i != hi {
		return errors.New("message overrun")
	}
	return nil
}

func parsePayload(name string, b []byte) (*payload, error) {
	p := &payload{name: name, body: b}
	ids := func(s, e int, isLink bool) error {
		return fields(b, s, e, func(num, fs, fe int) error {
			switch {
			case num == 1 && fe-fs == 16:
				p.traceOff = append(p.traceOff, fs)
			case (num == 2 || (num == 4 && !isLink)) && fe-fs == 8:
				p.spanOff = append(p.spanOff, fs)
			case num == 13 && !isLink: // Span.links
				return fields(b, fs, fe, func(ln, ls, le int) error {
					switch {
					case ln == 1 && le-ls == 16:
						p.traceOff = append(p.traceOff, ls)
					case ln == 2 && le-ls == 8:
						p.spanOff = append(p.spanOff, ls)
					}
					return nil
				})
			}
			return nil
		})
	}
	err := fields(b, 0, len(b), func(num, s, e int) error { // ExportTraceServiceRequest
		if num != 1 {
			return nil
		}
		return fields(b, s, e, func(num, s, e int) error { // ResourceSpans
			if num != 2 {
				return nil
			}
			return fields(b, s, e, func(num, s, e int) error { // ScopeSpans
				if num != 2 {
					return nil
				}
				p.spans++
				fixed64s(b, s, e, func(num, off int) { // start_time_unix_nano, end_time_unix_nano
					if num == 7 || num == 8 {
						p.timeOff = append(p.timeOff, off)
						if t := leUint64(b[off:]); num == 7 && (p.minStart == 0 || t < p.minStart) {
							p.minStart = t
						}
						if t := leUint64(b[off:]); num == 7 && t > p.maxStart {
							p.maxStart = t
						}
					}
				})
				if err := fields(b, s, e, func(num, es, ee int) error { // Span.events
					if num == 11 {
						fixed64s(b, es, ee, func(num, off int) {
							if num == 1 {
								p.timeOff = append(p.timeOff, off)
							}
						})
					}
					return nil
				}); err != nil {
					return err
				}
				return ids(s, e, false) // Span
			})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %v", name, err)
	}
	return p, nil
}

func loadPayloads(dir string) ([]*payload, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.pb"))
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	if len(names) == 0 {
		return nil, fmt.Errorf("no *.pb files in %s", dir)
	}
	var out []*payload
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, err
		}
		p, err := parsePayload(filepath.Base(n), b)
		if err != nil {
			return nil, err
		}
		if p.spans == 0 {
			return nil, fmt.Errorf("%s: no spans", n)
		}
		out = append(out, p)
	}
	return out, nil
}

func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

func xor8(b []byte, k uint64) {
	for i := 0; i < 8; i++ {
		b[i] ^= byte(k >> (8 * i))
	}
}

func leUint64(b []byte) uint64 {
	var v uint64
	for i := 7; i >= 0; i-- {
		v = v<<8 | uint64(b[i])
	}
	return v
}

func putLeUint64(b []byte, v uint64) {
	for i := 0; i < 8; i++ {
		b[i] = byte(v >> (8 * i))
	}
}

// fill copies payload p into buf (re-keyed for round/idSeed, and with every
// time moved so the earliest span starts at startAt unless it is 0) and
// returns it.
func fill(buf []byte, p *payload, round uint64, idSeed uint64, startAt uint64) []byte {
	buf = append(buf[:0], p.body...)
	if startAt != 0 && p.minStart != 0 {
		d := startAt - p.minStart // wraps for an earlier startAt; the sum is still right
		for _, o := range p.timeOff {
			if t := leUint64(buf[o:]); t != 0 {
				putLeUint64(buf[o:], t+d)
			}
		}
	}
	if round == 0 && idSeed == 0 {
		return buf
	}
	kt := splitmix(idSeed*0x100000001b3 ^ round<<1)
	ks := splitmix(kt)
	for _, o := range p.traceOff {
		xor8(buf[o:], kt)
	}
	for _, o := range p.spanOff {
		xor8(buf[o:], ks)
	}
	return buf
}

// ---- HTTP/1.1 over one keep-alive connection ---------------------------------

type conn struct {
	addr    string
	header  string // request line + headers up to Content-Length value
	timeout time.Duration
	c       net.Conn
	br      *bufio.Reader
}

func (c *conn) close() {
	if c.c != nil {
		c.c.Close()
		c.c = nil
	}
}

// do sends one request; returns status (0 on transport error) and an error label.
func (c *conn) do(body []byte) (int, string) {
	if c.c == nil {
		nc, err := net.DialTimeout("tcp", c.addr, c.timeout)
		if err != nil {
			return 0, "connect"
		}
		c.c = nc
		c.br = bufio.NewReaderSize(nc, 64<<10)
	}
	c.c.SetDeadline(time.Now().Add(c.timeout))
	hdr := c.header + strconv.Itoa(len(body)) + "\r\n\r\n"
	bufs := net.Buffers{[]byte(hdr), body}
	if _, err := bufs.WriteTo(c.c); err != nil {
		c.close()
		return 0, errLabel(err, "write")
	}
	resp, err := http.ReadResponse(c.br, nil)
	if err != nil {
		c.close()
		return 0, errLabel(err, "read")
	}
	_, err = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if err != nil {
		c.close()
		return 0, errLabel(err, "read_body")
	}
	if resp.Close {
		c.close()
	}
	return resp.StatusCode, ""
}

func errLabel(err error, what string) string {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return what + "_timeout"
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return what + "_closed"
	}
	return what + "_error"
}

// ---- the run -------------------------------------------------------------------

type workerResult struct {
	lat       []time.Duration
	okReqs    int64
	okSpans   int64
	bytesSent int64
	errs      map[string]int64
	lastDone  time.Time
}

type stats struct {
	okSpans atomic.Int64
}

func pct(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	if i < 0 {
		i = 0
	}
	return float64(sorted[i]) / 1e6
}

func round3(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return -1
	}
	return math.Round(f*1000) / 1000
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

func runSink(addr string) {
	empty := []byte{}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.WriteHeader(200)
		w.Write(empty)
	})
	fmt.Fprintf(os.Stderr, "sink listening on %s\n", addr)
	if err := http.ListenAndServe(addr, h); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "llm" {
		os.Exit(llmMain(os.Args[2:]))
	}
	var (
		target   = flag.String("url", "http://127.0.0.1:4318/v1/traces", "OTLP/HTTP traces endpoint")
		dir      = flag.String("dir", "", "directory of *.pb ExportTraceServiceRequest bodies")
		conns    = flag.Int("conns", 4, "keep-alive connections (each sequential)")
		duration = flag.Duration("duration", 20*time.Second, "stop issuing requests after this long (0: no limit)")
		count    = flag.Int64("requests", 0, "stop after this many requests (0: no limit)")
		rate     = flag.Float64("rate", 0, "open-loop mode: target spans/s (0: closed loop)")
		idSeed   = flag.Uint64("id-seed", 0, "mixed into the id re-keying; use a different value per run against one server")
		timeout  = flag.Duration("timeout", 60*time.Second, "per-request timeout (connect, send, response)")
		backoff  = flag.Duration("backoff", 50*time.Millisecond, "closed loop: pause a connection this long after a 429/503")
		quiet    = flag.Bool("quiet", false, "no per-second progress on stderr")
		sink     = flag.String("sink", "", "run a trivial OTLP sink on ADDR instead (for testing the load generator)")
		maxInfl  = flag.Duration("drain", 30*time.Second, "after the duration, wait at most this long for in-flight requests")
		nowTimes = flag.Bool("now-times", false, "move each request's times so its latest span starts at the send time, as spans a live application exports have (default: the files' timestamps as they are)")
	)
	flag.Parse()
	if *sink != "" {
		runSink(*sink)
		return
	}
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "loadgen: -dir is required")
		os.Exit(2)
	}
	u, err := url.Parse(*target)
	if err != nil || u.Scheme != "http" {
		fmt.Fprintln(os.Stderr, "loadgen: -url must be http://host:port/path")
		os.Exit(2)
	}
	addr := u.Host
	if !strings.Contains(addr, ":") {
		addr += ":80"
	}
	path := u.RequestURI()
	pls, err := loadPayloads(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	maxLen, totSpans, totBytes := 0, 0, 0
	for _, p := range pls {
		if len(p.body) > maxLen {
			maxLen = len(p.body)
		}
		totSpans += p.spans
		totBytes += len(p.body)
	}
	meanSpans := float64(totSpans) / float64(len(pls))
	header := "POST " + path + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUser-Agent: lanterna-loadgen\r\nContent-Type: application/x-protobuf\r\nContent-Length: "

	open := *rate > 0
	var interval time.Duration
	if open {
		interval = time.Duration(meanSpans / *rate * 1e9)
	}
	var seq atomic.Int64
	var st stats
	results := make([]workerResult, *conns)
	cpu0 := cpuSeconds()
	start := time.Now().Add(20 * time.Millisecond) // let every worker be ready
	var stop time.Time
	if *duration > 0 {
		stop = start.Add(*duration)
	}
	hardStop := stop.Add(*maxInfl)

	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			res := &results[w]
			res.errs = map[string]int64{}
			c := &conn{addr: addr, header: header, timeout: *timeout}
			defer c.close()
			buf := make([]byte, 0, maxLen)
			for {
				s := seq.Add(1) - 1
				if *count > 0 && s >= *count {
					return
				}
				var sched time.Time
				if open {
					sched = start.Add(time.Duration(s) * interval)
					if !stop.IsZero() && !sched.Before(stop) {
						return
					}
					if d := time.Until(sched); d > 0 {
						time.Sleep(d)
					}
				} else {
					now := time.Now()
					if now.Before(start) {
						time.Sleep(start.Sub(now))
					}
					if !stop.IsZero() && !time.Now().Before(stop) {
						return
					}
				}
				if !stop.IsZero() && time.Now().After(hardStop) {
					res.errs["not_sent_drain"]++
					continue
				}
				p := pls[int(s)%len(pls)]
				var startAt uint64
				if *nowTimes {
					startAt = uint64(time.Now().UnixNano()) - (p.maxStart - p.minStart)
				}
				body := fill(buf, p, uint64(s)/uint64(len(pls)), *idSeed, startAt)
				t0 := time.Now()
				if !open {
					sched = t0
				}
				code, label := c.do(body)
				done := time.Now()
				res.bytesSent += int64(len(body))
				res.lastDone = done
				if code == 200 {
					res.okReqs++
					res.okSpans += int64(p.spans)
					st.okSpans.Add(int64(p.spans))
					res.lat = append(res.lat, done.Sub(sched))
				} else {
					if code != 0 {
						label = strconv.Itoa(code)
					}
					res.errs[label]++
					if !open && (code == 429 || code == 503 || code == 0) {
						time.Sleep(*backoff)
					}
				}
			}
		}(w)
	}

	// Per-second progress (and a timeline in the result, to spot stalls).
	var timeline []int64
	doneCh := make(chan struct{})
	go func() { wg.Wait(); close(doneCh) }()
	tick := time.NewTicker(time.Second)
	var prev int64
	sec := 0
loop:
	for {
		select {
		case <-doneCh:
			break loop
		case <-tick.C:
			cur := st.okSpans.Load()
			timeline = append(timeline, cur-prev)
			sec++
			if !*quiet {
				fmt.Fprintf(os.Stderr, "  [%3ds] %8d spans/s acked\n", sec, cur-prev)
			}
			prev = cur
		}
	}
	tick.Stop()
	end := time.Now()
	cpu1 := cpuSeconds()

	var all []time.Duration
	var okReqs, okSpans, bytesSent int64
	errs := map[string]int64{}
	last := start
	for _, r := range results {
		all = append(all, r.lat...)
		okReqs += r.okReqs
		okSpans += r.okSpans
		bytesSent += r.bytesSent
		for k, v := range r.errs {
			errs[k] += v
		}
		if r.lastDone.After(last) {
			last = r.lastDone
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	elapsed := end.Sub(start).Seconds()
	// Rates are over the window from the start to the last response (of any
	// status): issuing stops at `stop` and the last responses land shortly
	// after, so a server that only answers errors late in the run is not
	// credited with a shorter window.
	if !stop.IsZero() && stop.After(last) && *count == 0 {
		last = stop
	}
	window := last.Sub(start).Seconds()
	if window <= 0 {
		window = elapsed
	}
	var mean float64
	for _, d := range all {
		mean += float64(d)
	}
	if len(all) > 0 {
		mean = mean / float64(len(all)) / 1e6
	}
	mode := "closed"
	if open {
		mode = "open"
	}
	var errTotal int64
	for _, v := range errs {
		errTotal += v
	}
	out := map[string]any{
		"mode": mode, "url": *target, "conns": *conns, "duration_s": duration.Seconds(),
		"target_rate_spans_per_s": *rate, "id_seed": *idSeed,
		"payload_files": len(pls), "payload_mean_spans": round3(meanSpans),
		"payload_mean_bytes": totBytes / len(pls),
		"requests_ok":        okReqs, "spans_ok": okSpans, "requests_failed": errTotal,
		"errors":         errs,
		"elapsed_s":      round3(elapsed),
		"window_s":       round3(window),
		"spans_per_s":    round3(float64(okSpans) / window),
		"requests_per_s": round3(float64(okReqs) / window),
		"mb_per_s_sent":  round3(float64(bytesSent) / window / 1e6),
		"latency_ms": map[string]float64{
			"p50": round3(pct(all, 0.50)), "p90": round3(pct(all, 0.90)),
			"p99": round3(pct(all, 0.99)), "p999": round3(pct(all, 0.999)),
			"max": round3(pct(all, 1.0)), "mean": round3(mean),
		},
		"latency_samples":      len(all),
		"loadgen_cpu_s":        round3(cpu1 - cpu0),
		"timeline_spans_per_s": timeline,
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	enc.Encode(out)
	fmt.Fprintf(os.Stderr, "%s loop, %d conns: %d spans acked in %.1fs = %.0f spans/s (%.1f req/s, %.0f MB/s); "+
		"latency p50 %.1f p90 %.1f p99 %.1f max %.1f ms; errors %v; loadgen cpu %.1fs\n",
		mode, *conns, okSpans, window, float64(okSpans)/window, float64(okReqs)/window,
		float64(bytesSent)/window/1e6, pct(all, .5), pct(all, .9), pct(all, .99), pct(all, 1), errs, cpu1-cpu0)
}
