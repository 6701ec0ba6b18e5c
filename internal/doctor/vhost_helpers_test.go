package doctor

import "github.com/jitsi-agent/jitsi-agent/internal/prosody/prosodytest"

var renderedVhost = prosodytest.RenderedVhost

const (
	goodTokenLines    = prosodytest.GoodTokenLines
	tokenVerification = prosodytest.TokenVerification
)
