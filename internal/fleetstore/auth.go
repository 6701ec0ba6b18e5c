package fleetstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// HostUser is the etcd user a fleet host signs in as.
func HostUser(host string) string { return "jitsi-agent-host-" + host }

// The role a host gets: read the whole fleet prefix; write only its own
// registration (hosts/NAME) and the cluster secret key (which the first
// agent creates, once, by compare-and-swap).
func (e *Etcd) hostPerms(host string) []perm {
	return []perm{
		{"READ", e.prefix, string(prefixEnd(e.prefix))},
		{"READWRITE", e.prefix + "hosts/" + host, ""},
		{"READWRITE", e.prefix + "secrets/cluster", ""},
	}
}

type perm struct{ typ, key, end string }

// admin runs an auth administration request, ignoring "already exists".
func (e *Etcd) admin(ctx context.Context, path string, req any) error {
	var r struct{}
	err := e.call(ctx, path, req, &r)
	if err != nil && strings.Contains(err.Error(), "already exists") {
		return nil
	}
	return err
}

func (e *Etcd) grantRole(ctx context.Context, role string, perms []perm) error {
	if err := e.admin(ctx, "/v3/auth/role/add", map[string]any{"name": role}); err != nil {
		return fmt.Errorf("etcd role %s: %w", role, err)
	}
	for _, p := range perms {
		pm := map[string]any{"permType": p.typ, "key": []byte(p.key)}
		if p.end != "" {
			pm["range_end"] = []byte(p.end)
		}
		if err := e.admin(ctx, "/v3/auth/role/grant", map[string]any{"name": role, "perm": pm}); err != nil {
			return fmt.Errorf("etcd role %s: grant %s on %s: %w", role, p.typ, p.key, err)
		}
	}
	return nil
}

func (e *Etcd) addUser(ctx context.Context, user, password, role string) error {
	if password == "" {
		return errors.New("empty password")
	}
	if err := e.admin(ctx, "/v3/auth/user/add", map[string]any{"name": user, "password": password}); err != nil {
		return fmt.Errorf("etcd user %s: %w", user, err)
	}
	// A user added before keeps its old password otherwise.
	if err := e.admin(ctx, "/v3/auth/user/changepw", map[string]any{"name": user, "password": password}); err != nil {
		return fmt.Errorf("etcd user %s: %w", user, err)
	}
	if err := e.admin(ctx, "/v3/auth/user/grant", map[string]any{"user": user, "role": role}); err != nil {
		return fmt.Errorf("etcd user %s: grant %s: %w", user, role, err)
	}
	return nil
}

// GrantHost creates (or updates) host's etcd user and role: it may read
// the fleet and write only its own registration and the cluster secret.
// The store must be signed in as an administrator (root) or auth off.
func (e *Etcd) GrantHost(ctx context.Context, host, password string) error {
	role := HostUser(host)
	if err := e.grantRole(ctx, role, e.hostPerms(host)); err != nil {
		return err
	}
	return e.addUser(ctx, HostUser(host), password, role)
}

// GrantPusher creates (or updates) a user that may push and roll back:
// read and write the whole fleet prefix.
func (e *Etcd) GrantPusher(ctx context.Context, user, password string) error {
	role := "jitsi-agent-pusher"
	if err := e.grantRole(ctx, role, []perm{{"READWRITE", e.prefix, string(prefixEnd(e.prefix))}}); err != nil {
		return err
	}
	return e.addUser(ctx, user, password, role)
}

// EnableAuth creates the root user (with the root role) and switches etcd's
// auth on; from then on every client signs in.
func (e *Etcd) EnableAuth(ctx context.Context, rootPassword string) error {
	if err := e.addUser(ctx, "root", rootPassword, "root"); err != nil {
		return err
	}
	var r struct{}
	if err := e.call(ctx, "/v3/auth/enable", map[string]any{}, &r); err != nil {
		return fmt.Errorf("etcd auth enable: %w", err)
	}
	return nil
}
