package testenv

import (
	"fmt"
	"path/filepath"
	"strings"
)

// NginxTempPaths returns the http-level directives that keep a test's nginx
// temp directories under dir. Debian's nginx is built with absolute temp
// paths under /var/lib/nginx, which `-p PREFIX` does not move, so without
// these a test's nginx (even `nginx -t`) would create directories on the
// host.
func NginxTempPaths(dir string) string {
	var b strings.Builder
	for _, name := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&b, "    %s_temp_path %q;\n", name, filepath.Join(dir, name))
	}
	return b.String()
}
