package fleet

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Store keys (relative to the store's prefix).
const (
	keyCurrent       = "current"
	prefixGeneration = "generations/"
	prefixHost       = "hosts/"
	keyClusterSecret = "secrets/cluster"
)

// KeepGenerations is how many generations the store keeps (older ones are
// deleted by the push that makes them too old; rollback reaches these).
const KeepGenerations = 10

func generationKey(n int64) string { return fmt.Sprintf("%s%020d", prefixGeneration, n) }

func parseGenerationKey(k string) (int64, bool) {
	s, ok := strings.CutPrefix(k, prefixGeneration)
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

func hostKey(name string) string { return prefixHost + name }

// Current is the store's "current" key: the generation every host
// converges to (through the rollout), the one before it and the newest
// number ever pushed.
type Current struct {
	Generation int64     `json:"generation"`
	Previous   int64     `json:"previous,omitempty"`
	Latest     int64     `json:"latest"`
	At         time.Time `json:"at"`
	Reason     string    `json:"reason"` // push, rollback
}

// HostRecord is what a host's agent registers under hosts/NAME, on its
// lease: gone when the agent is (after the lease TTL).
type HostRecord struct {
	Host    string   `json:"host"`
	Roles   []string `json:"roles,omitempty"`
	Address string   `json:"address,omitempty"`
	Shard   string   `json:"shard,omitempty"`
	Version string   `json:"version,omitempty"`
	// Generation is the generation applied and running (0: none yet);
	// Target the one the agent works towards (its turn in the rollout
	// has come), Waiting what it waits for when Target is not reached.
	Generation int64  `json:"generation"`
	Target     int64  `json:"target,omitempty"`
	Waiting    string `json:"waiting,omitempty"`
	Healthy    bool   `json:"healthy"`
	// State: ok, applying, failed, degraded, waiting.
	State     string    `json:"state"`
	Drift     []string  `json:"drift,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	Started   time.Time `json:"started"`
	// StaleSince is when the agent last lost the store (it kept serving
	// its generation and caught up when the store answered again).
	StaleSince *time.Time `json:"stale_since,omitempty"`
	LeaseTTL   float64    `json:"lease_ttl_seconds"`
}

func decode[T any](b []byte) (*T, error) {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	return &v, nil
}
