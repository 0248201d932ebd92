// Command fakellm is a fast stand-in for an OpenAI-compatible chat
// completions server, for measuring what a proxy in front of it adds.
// Standard library only.
//
//	POST /v1/chat/completions
//	  "stream": false (default): one chat.completion object with usage,
//	    after -latency.
//	  "stream": true: server-sent events as the real API sends them: a
//	    chunk with the assistant role, -tokens content deltas (the first
//	    after -ttft, the others -token-delay apart), a chunk with the
//	    finish reason, a usage-only chunk when stream_options.include_usage
//	    is true (every other chunk then carries "usage":null), and
//	    "data: [DONE]".
//	GET /health    200 "ok"
//	GET /stats     request counters as JSON
//	GET /v1/models one model
//
// Responses are built from pre-rendered pieces so that the fake costs as
// little CPU as possible per request; -check-body makes it also verify
// that each request body is JSON with a messages array.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	listen     = flag.String("listen", "127.0.0.1:9600", "address to listen on")
	latency    = flag.Duration("latency", 0, "non-streaming: delay before the response")
	ttft       = flag.Duration("ttft", 0, "streaming: delay from the request to the first content delta")
	tokenDelay = flag.Duration("token-delay", 0, "streaming: delay between content deltas")
	nTokens    = flag.Int("tokens", 24, "content deltas per stream (and words in the non-streaming answer)")
	fixedModel = flag.String("model", "", "model name to answer with (default: the requested one)")
	checkBody  = flag.Bool("check-body", false, "reject request bodies that are not chat requests (costs CPU)")
)

var (
	nReq, nStream, nBad atomic.Int64
	idSeq               atomic.Uint64
	started             = time.Now()
)

// The answer, split in the pieces a tokenizer would roughly produce.
var words = []string{"Sure", "!", " Here", " is", " a", " short", " answer", " to", " your", " question", ":",
	" the", " capital", " of", " France", " is", " Paris", ",", " which", " is", " also", " its", " largest",
	" city", ".", " It", " lies", " on", " the", " Seine", " river", " in", " the", " north", " of", " the",
	" country", "."}

func token(i int) string { return words[i%len(words)] }

// request is the part of a chat completions request the fake looks at.
type request struct {
	Model         string `json:"model"`
	Stream        bool   `json:"stream"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
	Messages []struct {
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
}

func jsonString(s string) []byte {
	b, _ := json.Marshal(s)
	return b
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func completionID() string {
	return "chatcmpl-fake" + strconv.FormatUint(idSeq.Add(1)+uint64(started.UnixNano()&0xffffff)<<32, 36)
}

func promptTokens(r *request, bodyLen int) int {
	n := 0
	for _, m := range r.Messages {
		n += len(m.Content)/4 + 4
	}
	if n == 0 {
		n = bodyLen / 4
	}
	return n + 3
}

// Rendered once in main: the whole answer and each delta, as JSON strings.
var (
	answerJSON []byte
	tokenJSON  [][]byte
)

func usageJSON(prompt, completion int) string {
	return `{"prompt_tokens":` + strconv.Itoa(prompt) + `,"completion_tokens":` + strconv.Itoa(completion) +
		`,"total_tokens":` + strconv.Itoa(prompt+completion) +
		`,"prompt_tokens_details":{"cached_tokens":0,"audio_tokens":0},` +
		`"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}`
}

func chat(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, `{"error":{"message":"use POST","type":"invalid_request_error"}}`, http.StatusMethodNotAllowed)
		return
	}
	nReq.Add(1)
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var req request
	if err := json.Unmarshal(body, &req); err != nil || (*checkBody && len(req.Messages) == 0) {
		nBad.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusBadRequest)
		io.WriteString(w, `{"error":{"message":"we could not parse the JSON body of your request","type":"invalid_request_error","param":null,"code":null}}`)
		return
	}
	model := req.Model
	if *fixedModel != "" {
		model = *fixedModel
	}
	id := completionID()
	created := strconv.FormatInt(time.Now().Unix(), 10)
	prompt := promptTokens(&req, len(body))
	h := w.Header()
	h.Set("X-Request-Id", "req_"+id[len("chatcmpl-"):])
	h.Set("Openai-Processing-Ms", "1")
	if !req.Stream {
		if *latency > 0 {
			time.Sleep(*latency)
		}
		b := bufPool.Get().(*bytes.Buffer)
		b.Reset()
		b.WriteString(`{"id":"` + id + `","object":"chat.completion","created":` + created + `,"model":`)
		b.Write(jsonString(model))
		b.WriteString(`,"choices":[{"index":0,"message":{"role":"assistant","content":`)
		b.Write(answerJSON)
		b.WriteString(`,"refusal":null,"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":`)
		b.WriteString(usageJSON(prompt, *nTokens))
		b.WriteString(`,"service_tier":"default","system_fingerprint":"fp_fake0001"}`)
		h.Set("Content-Type", "application/json")
		h.Set("Content-Length", strconv.Itoa(b.Len()))
		w.Write(b.Bytes())
		bufPool.Put(b)
		return
	}
	nStream.Add(1)
	stream(w, r, &req, id, created, model, prompt)
}

func stream(w http.ResponseWriter, r *http.Request, req *request, id, created, model string, prompt int) {
	fl, _ := w.(http.Flusher)
	usage := req.StreamOptions != nil && req.StreamOptions.IncludeUsage
	h := w.Header()
	h.Set("Content-Type", "text/event-stream; charset=utf-8")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	if fl != nil {
		fl.Flush()
	}
	head := `data: {"id":"` + id + `","object":"chat.completion.chunk","created":` + created + `,"model":` +
		string(jsonString(model)) + `,"service_tier":"default","system_fingerprint":"fp_fake0001","choices":[`
	tail := "]}\n\n"
	if usage {
		tail = `],"usage":null}` + "\n\n"
	}
	b := bufPool.Get().(*bytes.Buffer)
	defer bufPool.Put(b)
	send := func() bool {
		_, err := w.Write(b.Bytes())
		b.Reset()
		if fl != nil {
			fl.Flush()
		}
		return err == nil
	}
	ctx := r.Context()
	wait := func(d time.Duration) bool {
		if d <= 0 {
			return true
		}
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-ctx.Done():
			return false
		}
	}
	b.Reset()
	if !wait(*ttft) {
		return
	}
	b.WriteString(head + `{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}` + tail)
	for i := 0; i < *nTokens; i++ {
		if i > 0 && !wait(*tokenDelay) {
			return
		}
		b.WriteString(head + `{"index":0,"delta":{"content":`)
		b.Write(tokenJSON[i])
		b.WriteString(`},"logprobs":null,"finish_reason":null}` + tail)
		if !send() {
			return
		}
	}
	b.WriteString(head + `{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}` + tail)
	if usage {
		b.WriteString(head + `],"usage":` + usageJSON(prompt, *nTokens) + "}\n\n")
	}
	b.WriteString("data: [DONE]\n\n")
	send()
}

func main() {
	flag.Parse()
	var all string
	for i := 0; i < *nTokens; i++ {
		all += token(i)
		tokenJSON = append(tokenJSON, jsonString(token(i)))
	}
	answerJSON = jsonString(all)
	mux := http.NewServeMux()
	mux.HandleFunc("/v1/chat/completions", chat)
	mux.HandleFunc("/health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok") })
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"requests":%d,"streams":%d,"bad_requests":%d,"uptime_s":%.1f}`,
			nReq.Load(), nStream.Load(), nBad.Load(), time.Since(started).Seconds())
	})
	mux.HandleFunc("/v1/models", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"object":"list","data":[{"id":"fake-model","object":"model","created":0,"owned_by":"fakellm"}]}`)
	})
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 5 * time.Minute}
	go func() {
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGINT)
		<-ch
		srv.Close()
	}()
	fmt.Fprintf(os.Stderr, "fakellm listening on %s (latency %v, ttft %v, token delay %v, %d tokens)\n",
		ln.Addr(), *latency, *ttft, *tokenDelay, *nTokens)
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "fakellm:", err)
		os.Exit(1)
	}
}
