package certs

import (
	"math/rand/v2"
	"time"
)

// Clock is the time source of the Manager's retry loop (fake in tests).
// autocert's own renewal timers use the real clock.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Backoff is capped exponential backoff with jitter for failed attempts.
type Backoff struct {
	// Min is the first delay (default 1 min, which is also how long autocert
	// keeps a failed attempt before it tries the CA again).
	Min time.Duration
	// Max caps the delay (default 1 h).
	Max time.Duration
	// Jitter is the random extra fraction added to each delay, in [0, Jitter)
	// (default 0.25).
	Jitter float64
	// Rand returns a float in [0, 1) (default math/rand/v2).
	Rand func() float64
}

// DefaultBackoff is 1 min doubling to 1 h, +0-25 % jitter.
var DefaultBackoff = Backoff{Min: time.Minute, Max: time.Hour, Jitter: 0.25}

// Delay returns the wait after the n-th consecutive failure (n >= 1): Min,
// 2*Min, 4*Min ... capped at Max, each plus jitter, never below Min and
// never above Max.
func (b Backoff) Delay(n int) time.Duration {
	minD, maxD, j := b.Min, b.Max, b.Jitter
	if minD <= 0 {
		minD = DefaultBackoff.Min
	}
	if maxD < minD {
		maxD = max(minD, DefaultBackoff.Max)
	}
	if j < 0 {
		j = 0
	}
	r := b.Rand
	if r == nil {
		r = rand.Float64
	}
	if n < 1 {
		n = 1
	}
	d := minD
	for i := 1; i < n && d < maxD; i++ {
		d *= 2
	}
	d = min(d, maxD)
	d += time.Duration(float64(d) * j * r())
	return min(max(d, minD), maxD)
}
