// Package plan compares the desired render.Set with the host and with the
// manifest of the last apply, and lists the changes apply would make, each
// with a reason.
//
// # Reasons
//
//   - new: the path was never applied (not in the manifest) and the host
//     lacks it or holds other content.
//   - spec-changed: the host still holds exactly what was last applied
//     (manifest hash == host hash) and the spec now wants something else.
//   - drift: the host content (or link target) differs from what was last
//     applied: edited on the host.
//   - missing: the path was applied before and is gone from the host.
//   - package-replaced: like drift, but the host content looks like a Debian
//     package put it back (see below).
//   - mode / owner: only permission bits / ownership differ.
//   - symlink-planted: a symlink sits where a managed regular file belongs.
//     It is never followed: apply replaces the link itself with the file.
//   - removed-from-spec: the manifest lists a path the spec no longer
//     produces. jitsi-agent never deletes files: apply stops managing it
//     (action "unmanage") and leaves the file in place.
//
// # The package-replaced rule
//
// A file whose host content differs from the manifest is labelled
// package-replaced instead of drift when any of these holds:
//
//  1. its md5 equals the md5 dpkg recorded for that path as a conffile in
//     <root>/var/lib/dpkg/status (it is byte-identical to a package's shipped
//     version), or
//  2. the applied version carried the managed-by marker (the text
//     "jitsi-agent", which rendered headers contain) and the host version
//     does not (a hand edit keeps the header; a package's file has none), or
//  3. a sibling <path>.dpkg-old, .dpkg-bak or .ucf-old holds exactly the
//     applied content (dpkg/ucf moved our version aside while installing
//     the maintainer's).
//
// # Debian links
//
// A desired regular file whose host path is a symlink is written through
// the link only for the Debian link directories (/etc/prosody/conf.d ->
// /etc/prosody/conf.avail, /etc/nginx/sites-enabled ->
// /etc/nginx/sites-available), when the link points into the paired
// directory at a regular (or missing) file that is not itself in the set.
// Change.WritePath then names the target. Any other symlink in a managed
// file's place is symlink-planted. A symlinked parent directory is refused
// with an error (except merged-/usr links such as /lib -> usr/lib).
//
// # JSON report (format_version 1)
//
//	{
//	  "format_version": 1,
//	  "root": "/",                 // the --root
//	  "serial": 4,                 // last applied serial (0 = never)
//	  "changes": [{
//	    "path": "/etc/...",        // managed path as under /
//	    "write_path": "/etc/...",  // only when written through a Debian link
//	    "action": "create|update|mode|owner|symlink|unmanage",
//	    "reason": "new|spec-changed|drift|missing|package-replaced|mode|owner|symlink-planted|removed-from-spec",
//	    "kind": "file|symlink",
//	    "component": "prosody",
//	    "units": ["prosody.service"],
//	    "sensitive": false,
//	    "host_changed": true,      // host differs from what was last applied
//	    "mode":   {"from": "0644", "to": "0640"},        // when it changes
//	    "owner":  {"from": "root:root", "to": "root:prosody"},
//	    "target": {"from": "../a", "to": "../b"},        // symlinks
//	    "detail": "human explanation",
//	    "diff": "unified diff, secrets replaced by (sensitive)"
//	  }],
//	  "summary": {"create": 0, "update": 1, "mode": 0, "owner": 0, "symlink": 0, "unmanage": 0, "total": 1},
//	  "units": ["prosody.service"],   // what apply would reload, in order
//	  "notices": ["..."],             // e.g. ownership not changed (not root)
//	  "pending_restarts": [{"unit": "jicofo.service", "component": "jicofo", "since": "RFC 3339", "reason": "..."}],
//	  "live": [{                      // what the changes do to running services (omitted when nothing)
//	    "unit": "prosody.service",
//	    "effect": "live",              // live (no session ends) | restart | deferred-restart
//	    "steps": ["activate on guest.meet.example.com (added to the config)", "..."]
//	  }]
//	}
//
// Diffs: every Set.Redact value is replaced by "(sensitive)" in both
// versions; in Sensitive files, removed lines that look secret-bearing (a
// keyword such as secret/password/token/key/auth, or a token of 16+
// characters) are masked entirely, because they may hold an old secret the
// spec no longer knows; private key material is never diffed.
//
// Fields are only added in later versions of format 1; a breaking change
// bumps format_version.
//
// # Exit codes (jitsi-agent plan)
//
// 0: no changes; 1: error; 2: changes pending (not a failure), like
// terraform plan -detailed-exitcode. Restarts deferred by an earlier apply
// (restart = "defer") count as pending changes.
package plan
