package apply

import (
	"os"

	"github.com/jitsi-agent/jitsi-agent/internal/fsys"
)

func ownerOf(fi os.FileInfo) (int, int) { return fsys.Owner(fi) }
