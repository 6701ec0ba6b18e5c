package joinapi

import (
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens per second up to burst. A negative
// rate never limits.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
}

func newBucket(rate float64, burst int, now time.Time) *bucket {
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), last: now}
}

// take removes one token at now. When none is left it reports how long
// until one is.
func (b *bucket) take(now time.Time) (bool, time.Duration) {
	if b.rate < 0 {
		return true, 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if el := now.Sub(b.last); el > 0 {
		b.tokens = min(b.burst, b.tokens+el.Seconds()*b.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	if b.rate == 0 {
		return false, time.Hour
	}
	return false, time.Duration((1 - b.tokens) / b.rate * float64(time.Second))
}
