package render

import (
	"testing"

	"github.com/jitsi-agent/jitsi-agent/internal/files"
)

// Every secret the files table names is one render can check.
func TestTableSecretsAreKnown(t *testing.T) {
	data := &BuiltinData{JWT: true, TURN: true, AppSecret: "a", TURNSecret: "t", FocusPassword: "f", JVBPassword: "j", JibriPassword: "b", RecorderPassword: "r"}
	for _, f := range files.Table() {
		for _, s := range f.Secrets {
			if v, needed := secretValue(s, data); v == "" || !needed {
				t.Errorf("%s: secret %q is not known to render", f.Path, s)
			}
		}
		if err := checkSecrets(f, &BuiltinData{JWT: true, TURN: true}); len(f.Secrets) > 0 && err == nil {
			t.Errorf("%s: rendered with its secrets empty", f.Path)
		}
	}
}
