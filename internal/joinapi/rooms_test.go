package joinapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/spec"
)

// heldProsody stands in for Prosody's /room: it counts requests and holds
// each answer until the test gives it (by the request's arrival number;
// "404" answers that status).
type heldProsody struct {
	requests atomic.Int32
	mu       sync.Mutex
	answers  map[int32]chan string
}

func (h *heldProsody) answer(n int32) chan string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.answers[n] == nil {
		h.answers[n] = make(chan string, 1)
	}
	return h.answers[n]
}

func (h *heldProsody) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body string
	select {
	case body = <-h.answer(h.requests.Add(1)):
	case <-r.Context().Done(): // the caller left, or the test ended (failed)
		return
	}
	if body == "404" {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	w.Write([]byte(body))
}

type fakeShell struct{ answer string }

func (s fakeShell) Run(context.Context, string) (string, error) { return s.answer, nil }

func heldRooms(t *testing.T) (*ProsodyRooms, *heldProsody) {
	t.Helper()
	h := &heldProsody{answers: map[int32]chan string{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	d := &spec.Deployment{Domain: "meet.example.com"}
	p := NewProsodyRooms(d, testTokens(t), fakeShell{answer: "Result: ended"})
	p.HTTPBase = srv.URL
	return p, h
}

// waitWaiters waits (bounded) until n callers share the room's request.
func waitWaiters(t *testing.T, p *ProsodyRooms, room string, n int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		p.mu.Lock()
		f := p.inflight[room]
		got := 0
		if f != nil {
			got = f.waiters
		}
		p.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d callers share the request, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// waitRequests waits (bounded) until Prosody has received n requests: a
// caller registered as waiting has not necessarily sent its request yet,
// and heldProsody numbers the requests in the order they arrive.
func waitRequests(t *testing.T, h *heldProsody, n int32) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); h.requests.Load() < n; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests reached Prosody, want %d", h.requests.Load(), n)
		}
	}
}

// TestStatusSharesOneRequest: concurrent status calls for one room make one
// request to Prosody and all get its answer; another room asks on its own;
// the first caller going away does not fail the others.
func TestStatusSharesOneRequest(t *testing.T) {
	p, h := heldRooms(t)
	const n = 8
	type answer struct {
		st  RoomStatus
		err error
	}
	answers := make(chan answer, n)
	firstCtx, cancelFirst := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // the first caller, which will give up
		defer wg.Done()
		_, err := p.Status(firstCtx, "weekly")
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled caller: %v", err)
		}
	}()
	waitWaiters(t, p, "weekly", 1)
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, err := p.Status(context.Background(), "weekly")
			answers <- answer{st, err}
		}()
	}
	waitWaiters(t, p, "weekly", n)
	cancelFirst()
	h.answer(1) <- `[{"jid":"a@x/1"},{"jid":"b@x/2"},{"jid":"b@x/2"}]`
	wg.Wait()
	close(answers)
	for a := range answers {
		if a.err != nil || !a.st.Running || a.st.Participants != 2 {
			t.Errorf("shared answer %+v %v", a.st, a.err)
		}
	}
	if got := h.requests.Load(); got != 1 {
		t.Errorf("%d requests to Prosody for %d concurrent calls, want 1", got, n)
	}
	// Once answered, the next call asks again.
	h.answer(2) <- `{}`
	if st, err := p.Status(context.Background(), "weekly"); err != nil || !st.Running || st.Participants != 0 {
		t.Errorf("later call: %+v %v", st, err)
	}
	if got := h.requests.Load(); got != 2 {
		t.Errorf("%d requests after a later call, want 2", got)
	}
}

// TestEndForgetsSharedStatus: a status call made after End returned does
// not join a request that was on its way before the end.
func TestEndForgetsSharedStatus(t *testing.T) {
	p, h := heldRooms(t)
	before := make(chan RoomStatus, 1)
	go func() {
		st, _ := p.Status(context.Background(), "weekly")
		before <- st
	}()
	waitWaiters(t, p, "weekly", 1)
	waitRequests(t, h, 1) // Prosody's request 1 is the one from before the end
	if ended, err := p.End(context.Background(), "weekly", ""); err != nil || !ended {
		t.Fatalf("end: %v %v", ended, err)
	}
	after := make(chan error, 1)
	go func() {
		st, err := p.Status(context.Background(), "weekly")
		if err == nil && st != (RoomStatus{}) {
			err = fmt.Errorf("call after the end got the answer from before it: %+v", st)
		}
		after <- err
	}()
	waitWaiters(t, p, "weekly", 1)     // a new request of its own
	waitRequests(t, h, 2)              // on its way to Prosody
	h.answer(1) <- `[{"jid":"a@x/1"}]` // the answer to the request from before the end
	if st := <-before; !st.Running {
		t.Errorf("call from before the end: %+v", st)
	}
	h.answer(2) <- "404" // the room is gone
	select {
	case err := <-after:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("call after the end never answered")
	}
	if got := h.requests.Load(); got != 2 {
		t.Errorf("%d requests to Prosody, want 2", got)
	}
}
