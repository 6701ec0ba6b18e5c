package certs

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// acmeTransport sits between autocert's acme.Client and the network. It
//   - removes tls-alpn-01 from the challenges of every authorization the CA
//     returns, so autocert (which always tries tls-alpn-01 first and has no
//     option to skip it) goes straight to http-01: no failed validation per
//     issuance behind nginx, and the agent never needs port 443;
//   - records the last ACME failure (network error, problem document, failed
//     challenge) so renewals that autocert retries internally still show up
//     in Status and the state file;
//   - refuses new orders beyond maxOrders per rolling hour, a local guard
//     against renewal loops burning the CA's rate limits;
//   - refuses everything after Close (autocert's renewal timers cannot be
//     stopped from outside; this keeps a replaced Manager off the network).
type acmeTransport struct {
	base      http.RoundTripper
	now       func() time.Time
	dirURL    string
	maxOrders int

	mu       sync.Mutex
	newOrder string // from the directory
	orders   []time.Time
	closed   bool
	lastErr  string
	lastAt   time.Time
}

const maxBody = 1 << 20

func (t *acmeTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, errors.New("certificate manager closed")
	}
	if req.Method == http.MethodPost && t.newOrder != "" && req.URL.String() == t.newOrder {
		now := t.now()
		kept := t.orders[:0]
		for _, o := range t.orders {
			if now.Sub(o) < time.Hour {
				kept = append(kept, o)
			}
		}
		t.orders = kept
		if len(t.orders) >= t.maxOrders {
			t.mu.Unlock()
			err := fmt.Errorf("local limit: %d new ACME orders in the last hour; waiting to protect the CA's rate limits", t.maxOrders)
			t.record(err.Error())
			return nil, err
		}
		t.orders = append(t.orders, now)
	}
	t.mu.Unlock()

	resp, err := t.base.RoundTrip(req)
	if err != nil {
		t.record("ACME server unreachable: " + err.Error())
		return nil, err
	}
	ct := resp.Header.Get("Content-Type")
	if !strings.Contains(ct, "json") {
		return resp, nil
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
	if err != nil {
		t.record("reading ACME response: " + err.Error())
		return nil, fmt.Errorf("read ACME response: %w", err)
	}
	if resp.StatusCode >= 400 {
		t.observeProblem(body)
	} else if req.URL.String() == t.dirURL {
		var dir struct {
			NewOrder string `json:"newOrder"`
		}
		if json.Unmarshal(body, &dir) == nil && dir.NewOrder != "" {
			t.mu.Lock()
			t.newOrder = dir.NewOrder
			t.mu.Unlock()
		}
	} else if nb, ok := t.filterAuthz(body); ok {
		body = nb
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	resp.ContentLength = int64(len(body))
	resp.Header.Del("Content-Length")
	return resp, nil
}

type problem struct {
	Type   string `json:"type"`
	Detail string `json:"detail"`
}

func (p problem) String() string {
	t := strings.TrimPrefix(p.Type, "urn:ietf:params:acme:error:")
	if p.Detail == "" {
		return t
	}
	return t + ": " + p.Detail
}

func (t *acmeTransport) observeProblem(body []byte) {
	var p problem
	if json.Unmarshal(body, &p) != nil || p.Type == "" {
		return
	}
	if strings.HasSuffix(p.Type, ":badNonce") { // acme.Client retries these
		return
	}
	t.record("ACME server: " + p.String())
}

// filterAuthz drops tls-alpn-01 from an authorization object and records the
// error of an invalid one. It returns false when body is not an
// authorization.
func (t *acmeTransport) filterAuthz(body []byte) ([]byte, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(body, &obj) != nil {
		return nil, false
	}
	rawCh, hasCh := obj["challenges"]
	if _, hasID := obj["identifier"]; !hasCh || !hasID {
		return nil, false
	}
	var chals []json.RawMessage
	if json.Unmarshal(rawCh, &chals) != nil {
		return nil, false
	}
	var status string
	_ = json.Unmarshal(obj["status"], &status)
	kept := chals[:0:0]
	for _, c := range chals {
		var ch struct {
			Type  string   `json:"type"`
			Error *problem `json:"error"`
		}
		if json.Unmarshal(c, &ch) != nil {
			kept = append(kept, c)
			continue
		}
		if status == "invalid" && ch.Error != nil {
			t.record("challenge " + ch.Type + " failed: " + ch.Error.String())
		}
		if ch.Type == "tls-alpn-01" {
			continue
		}
		kept = append(kept, c)
	}
	if len(kept) == len(chals) {
		return body, true
	}
	nc, err := json.Marshal(kept)
	if err != nil {
		return nil, false
	}
	obj["challenges"] = nc
	nb, err := json.Marshal(obj)
	if err != nil {
		return nil, false
	}
	return nb, true
}

func (t *acmeTransport) record(msg string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.lastErr, t.lastAt = msg, t.now()
}

// last returns the latest recorded failure at or after since ("" = none).
func (t *acmeTransport) last(since time.Time) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.lastErr == "" || t.lastAt.Before(since) {
		return ""
	}
	return t.lastErr
}

func (t *acmeTransport) close() {
	t.mu.Lock()
	t.closed = true
	t.mu.Unlock()
}
