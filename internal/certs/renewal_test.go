package certs

import (
	"testing"
	"time"
)

func TestIsRenewal(t *testing.T) {
	now := time.Now()
	old, _ := selfCA(t, "meet.example.com", now.Add(30*24*time.Hour))
	renewed, _ := selfCA(t, "meet.example.com", now.Add(90*24*time.Hour))
	earlier, _ := selfCA(t, "meet.example.com", now.Add(24*time.Hour))
	other, _ := selfCA(t, "other.example.com", now.Add(90*24*time.Hour))
	for name, c := range map[string]struct {
		deployed, next []byte
		want           bool
	}{
		"renewed":        {old, renewed, true},
		"same bytes":     {old, old, false},
		"expires sooner": {old, earlier, false},
		"other names":    {old, other, false},
		"not a cert":     {old, []byte("junk"), false},
		"nothing there":  {nil, renewed, false},
	} {
		if got := IsRenewal(c.deployed, c.next); got != c.want {
			t.Errorf("%s: IsRenewal = %v, want %v", name, got, c.want)
		}
	}
}
