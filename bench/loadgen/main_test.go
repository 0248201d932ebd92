package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func field(num int, b []byte) []byte {
	out := []byte{byte(num<<3 | 2)}
	n := len(b)
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	out = append(out, byte(n))
	return append(out, b...)
}

func cat(bs ...[]byte) []byte { return bytes.Join(bs, nil) }

// A request with two spans (child of root) and one link, built by hand.
func sample() ([]byte, []byte, []byte, []byte) {
	tid := bytes.Repeat([]byte{0xab}, 16)
	root := []byte{1, 2, 3, 4, 5, 6, 7, 8}
	kid := []byte{9, 10, 11, 12, 13, 14, 15, 16}
	name := field(5, []byte("chain"))
	span1 := cat(field(1, tid), field(2, root), name, []byte{0x39, 1, 0, 0, 0, 0, 0, 0, 0}) // fixed64 start time
	link := cat(field(1, tid), field(2, root))
	span2 := cat(field(1, tid), field(2, kid), field(4, root), name, field(13, link))
	scope := cat(field(1, field(1, []byte("scope"))), field(2, span1), field(2, span2))
	rs := cat(field(1, field(1, []byte{})), field(2, scope))
	return field(1, rs), tid, root, kid
}

func TestParseAndRekey(t *testing.T) {
	body, tid, root, kid := sample()
	p, err := parsePayload("x", body)
	if err != nil {
		t.Fatal(err)
	}
	if p.spans != 2 || len(p.traceOff) != 3 || len(p.spanOff) != 4 {
		t.Fatalf("spans=%d traceOff=%d spanOff=%d", p.spans, len(p.traceOff), len(p.spanOff))
	}
	same := fill(nil, p, 0, 0, 0)
	if !bytes.Equal(same, body) {
		t.Fatal("round 0 / seed 0 must send the body unchanged")
	}
	a := fill(nil, p, 1, 0, 0)
	b := fill(nil, p, 2, 0, 0)
	c := fill(nil, p, 1, 7, 0)
	for _, x := range [][]byte{a, b, c} {
		if bytes.Equal(x, body) || len(x) != len(body) {
			t.Fatal("rekeyed body must differ and keep its length")
		}
		q, err := parsePayload("y", x)
		if err != nil || q.spans != 2 {
			t.Fatal("rekeyed body must still parse", err)
		}
		// Every trace id occurrence equal, parent == root span id, link == root.
		t0 := x[q.traceOff[0] : q.traceOff[0]+16]
		for _, o := range q.traceOff {
			if !bytes.Equal(x[o:o+16], t0) || bytes.Equal(x[o:o+16], tid) {
				t.Fatal("trace ids not rekeyed consistently")
			}
		}
		s := func(i int) []byte { return x[q.spanOff[i] : q.spanOff[i]+8] }
		// order: span1.id, span2.id, span2.parent, link.span
		if !bytes.Equal(s(0), s(2)) || !bytes.Equal(s(0), s(3)) || bytes.Equal(s(0), s(1)) ||
			bytes.Equal(s(0), root) || bytes.Equal(s(1), kid) {
			t.Fatal("span ids not rekeyed consistently")
		}
	}
	if bytes.Equal(a, b) || bytes.Equal(a, c) {
		t.Fatal("different rounds/seeds must give different ids")
	}
}

// LOADGEN_DUMP=DIR writes re-keyed copies of the payloads in LOADGEN_PAYLOADS
// (for cross-checking with a protobuf decoder).
func TestDump(t *testing.T) {
	src, dst := os.Getenv("LOADGEN_PAYLOADS"), os.Getenv("LOADGEN_DUMP")
	if src == "" || dst == "" {
		t.Skip("set LOADGEN_PAYLOADS and LOADGEN_DUMP")
	}
	pls, err := loadPayloads(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pls[:2] {
		for r := uint64(0); r < 3; r++ {
			os.WriteFile(filepath.Join(dst, p.name+"."+string(rune('0'+r))), fill(nil, p, r, 5, 0), 0o644)
		}
	}
}

func TestShiftTimes(t *testing.T) {
	body, _, _, _ := sample()
	p, err := parsePayload("x", body)
	if err != nil {
		t.Fatal(err)
	}
	if p.minStart != 1 || len(p.timeOff) != 1 {
		t.Fatalf("minStart=%d timeOff=%d", p.minStart, len(p.timeOff))
	}
	x := fill(nil, p, 0, 0, 1000)
	if got := leUint64(x[p.timeOff[0]:]); got != 1000 {
		t.Fatalf("start time %d, want 1000", got)
	}
	x[p.timeOff[0]] = 1 // the rest is the file, byte for byte
	for i := 1; i < 8; i++ {
		x[p.timeOff[0]+i] = 0
	}
	if !bytes.Equal(x, body) {
		t.Fatal("only the times may change")
	}
}
