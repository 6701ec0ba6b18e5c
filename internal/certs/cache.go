package certs

import (
	"context"

	"golang.org/x/crypto/acme/autocert"
)

// notifyCache wraps autocert's cache and reports every certificate stored
// under one of the slot keys ("name" or "name+rsa"). autocert stores a
// certificate there after a first issuance and after each renewal; tokens
// ("+token", "+http-01") and the account key are ignored.
type notifyCache struct {
	autocert.Cache
	slots map[string]Slot // cache key -> slot
	onPut func(Slot, []byte)
}

func (c *notifyCache) Put(ctx context.Context, key string, data []byte) error {
	if err := c.Cache.Put(ctx, key, data); err != nil {
		return err
	}
	if s, ok := c.slots[key]; ok {
		c.onPut(s, data)
	}
	return nil
}
