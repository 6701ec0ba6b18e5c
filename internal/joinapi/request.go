package joinapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/mail"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Stable error codes.
const (
	CodeUnauthorized     = "unauthorized"                // 401: missing or unknown bearer key
	CodeHostGrant        = "host_grant_forbidden"        // 403: is_host with a key that may not grant hosts
	CodeNotFound         = "not_found"                   // 404
	CodeMethodNotAllowed = "method_not_allowed"          // 405
	CodeUnsupportedMedia = "unsupported_media"           // 415: Content-Type is not application/json
	CodeBodyTooLarge     = "body_too_large"              // 413
	CodeInvalidJSON      = "invalid_json"                // 400: not one JSON object
	CodeUnknownField     = "unknown_field"               // 400: a field the endpoint does not know
	CodeInvalidField     = "invalid_field"               // 400: a field with a wrong type or value
	CodeInvalidStreamID  = "invalid_stream_id"           // 400
	CodeRateLimited      = "rate_limited"                // 429, with Retry-After
	CodeUnknownProfile   = "unknown_profile"             // 400: a profile the spec does not define
	CodeInternal         = "internal"                    // 500
	CodeUnavailable      = "meeting_service_unavailable" // 503: Prosody cannot be asked (status, end)
	maxIdentity          = 256
	maxName              = 256
	maxEmail             = 254
	maxStreamID          = 256
	maxProfile           = 32
	maxReason            = 200
)

// APIError is an error response.
type APIError struct {
	Status  int    `json:"-"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

func apiErr(status int, code, format string, args ...any) *APIError {
	return &APIError{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// JoinRequest is the request body.
type JoinRequest struct {
	Identity string `json:"identity"`
	Name     string `json:"name"`
	Email    string `json:"email"`
	IsHost   bool   `json:"is_host"`
	// Profile names a token_api profile (meeting type): its lifetime,
	// moderator rule and features. "" is the default.
	Profile string `json:"profile"`
}

// EndRequest is the optional body of POST .../end.
type EndRequest struct {
	// Reason is shown to the participants (at most 200 bytes).
	Reason string `json:"reason"`
}

// StatusResponse answers GET /api/v1/live/streams/{stream_id}.
type StatusResponse struct {
	RoomName     string `json:"room_name"`
	Running      bool   `json:"running"`
	Participants int    `json:"participants"`
}

// EndResponse answers POST /api/v1/live/streams/{stream_id}/end.
type EndResponse struct {
	RoomName string `json:"room_name"`
	// Ended is false when the meeting was not running.
	Ended bool `json:"ended"`
}

// JoinResponse is the success body.
type JoinResponse struct {
	Token string `json:"token"`
	// URL is the server URL (https://DOMAIN), the SDK's serverURL, as the
	// app team's guide (§6) specifies.
	URL      string `json:"url"`
	RoomName string `json:"room_name"`
	// MeetingURL is the full link to the room (URL + "/" + RoomName),
	// without the token: a browser opens MeetingURL + "?jwt=" + Token.
	MeetingURL string `json:"meeting_url"`
}

// joinFields are the request's fields, matched exactly (case-sensitive):
// {"IS_HOST": true} is an unknown field, not is_host.
var joinFields = []string{"identity", "name", "email", "is_host", "profile"}

// DecodeJoinRequest reads one JSON object of at most maxBody bytes from r,
// rejecting unknown fields (names match exactly, case included), repeated
// fields, wrong types, trailing data and invalid values.
func DecodeJoinRequest(r io.Reader, maxBody int64) (JoinRequest, *APIError) {
	var req JoinRequest
	body, e := readBody(r, maxBody)
	if e != nil {
		return req, e
	}
	if e := decodeFlat(body, func(name string) (any, bool) {
		switch name {
		case "identity":
			return &req.Identity, true
		case "name":
			return &req.Name, true
		case "email":
			return &req.Email, true
		case "is_host":
			return &req.IsHost, true
		case "profile":
			return &req.Profile, true
		}
		return nil, false
	}, joinFields); e != nil {
		return req, e
	}
	return req, req.validate()
}

// DecodeEndRequest reads the optional body of an end request: empty, or one
// JSON object with "reason".
func DecodeEndRequest(r io.Reader, maxBody int64) (EndRequest, *APIError) {
	var req EndRequest
	body, e := readBody(r, maxBody)
	if e != nil {
		return req, e
	}
	if len(body) == 0 {
		return req, nil // no body
	}
	if e := decodeFlat(body, func(name string) (any, bool) {
		if name == "reason" {
			return &req.Reason, true
		}
		return nil, false
	}, []string{"reason"}); e != nil {
		return req, e
	}
	return req, checkText("reason", req.Reason, maxReason, false)
}

// readBody reads at most maxBody bytes (413 beyond).
func readBody(r io.Reader, maxBody int64) ([]byte, *APIError) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody+1))
	if len(b) > int(maxBody) {
		return nil, tooLarge(maxBody)
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return nil, tooLarge(maxBody)
	}
	if err != nil {
		return nil, apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body could not be read")
	}
	return b, nil
}

func tooLarge(maxBody int64) *APIError {
	return apiErr(http.StatusRequestEntityTooLarge, CodeBodyTooLarge, "the body is larger than %d bytes", maxBody)
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// decodeFlat decodes body, which must be exactly one JSON object whose
// members are known fields of type string or bool (null leaves a field
// unset). field returns where a member goes (*string or *bool); names are
// compared exactly and each may appear once. body is checked with
// json.Valid first, so the member scan below runs on valid JSON only.
func decodeFlat(body []byte, field func(string) (any, bool), names []string) *APIError {
	if !json.Valid(body) {
		return syntaxError(body, names)
	}
	i := 0
	ws := func() {
		for i < len(body) && isSpace(body[i]) {
			i++
		}
	}
	ws()
	if body[i] != '{' {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body must be a JSON object")
	}
	i++
	var seen [8]string
	nseen := 0
	for {
		ws()
		if body[i] == '}' {
			return nil
		}
		if body[i] == ',' {
			i++
			ws()
		}
		end := skipString(body, i)
		name, ok := jsonStr(body[i:end])
		if !ok {
			return apiErr(http.StatusBadRequest, CodeInvalidJSON, "malformed field name at byte %d", i)
		}
		i = end
		ws()
		i++ // ':'
		ws()
		start := i
		i = skipValue(body, i)
		raw := body[start:i]
		dst, known := field(name)
		if !known {
			return apiErr(http.StatusBadRequest, CodeUnknownField, "unknown field %s; the fields are %s (lower case)",
				strconv.Quote(truncate(name, 64)), strings.Join(names, ", "))
		}
		for _, s := range seen[:nseen] {
			if s == name {
				return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q is given twice", name)
			}
		}
		if nseen < len(seen) {
			seen[nseen] = name
			nseen++
		}
		if raw[0] == 'n' { // null: unset
			continue
		}
		switch d := dst.(type) {
		case *string:
			v, ok := jsonStr(raw)
			if !ok {
				return typeError(name, "string", raw)
			}
			*d = v
		case *bool:
			switch raw[0] {
			case 't':
				*d = true
			case 'f':
				*d = false
			default:
				return typeError(name, "boolean", raw)
			}
		}
	}
}

func typeError(name, want string, raw []byte) *APIError {
	got := "number"
	switch raw[0] {
	case '"':
		got = "string"
	case 't', 'f':
		got = "bool"
	case '{':
		got = "object"
	case '[':
		got = "array"
	}
	return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q must be a JSON %s, not %s", name, want, got)
}

// jsonStr decodes a JSON string literal (quotes included).
func jsonStr(raw []byte) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	if bytes.IndexByte(raw, '\\') < 0 {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// skipString returns the index after the string starting at b[i] == '"'
// (b is valid JSON).
func skipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return i
}

// skipValue returns the index after the value starting at b[i] (valid JSON).
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for ; i < len(b); i++ {
			switch b[i] {
			case '"':
				i = skipString(b, i) - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return i
	}
	for i < len(b) && !isSpace(b[i]) && b[i] != ',' && b[i] != '}' && b[i] != ']' {
		i++
	}
	return i
}

// syntaxError explains why body is not one JSON value.
func syntaxError(body []byte, names []string) *APIError {
	if len(bytes.TrimSpace(body)) == 0 {
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body is empty; send a JSON object with the fields %s", strings.Join(names, ", "))
	}
	var v any
	err := json.Unmarshal(body, &v)
	var syn *json.SyntaxError
	if errors.As(err, &syn) {
		if syn.Offset >= int64(len(body)) || strings.Contains(syn.Error(), "unexpected end") {
			return apiErr(http.StatusBadRequest, CodeInvalidJSON, "the JSON object is truncated")
		}
		if strings.Contains(syn.Error(), "after top-level value") {
			return apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body must be exactly one JSON object")
		}
		return apiErr(http.StatusBadRequest, CodeInvalidJSON, "malformed JSON at byte %d", syn.Offset)
	}
	return apiErr(http.StatusBadRequest, CodeInvalidJSON, "the body must be a JSON object")
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

func checkText(field, v string, limit int, required bool) *APIError {
	if v == "" {
		if required {
			return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q is required", field)
		}
		return nil
	}
	if len(v) > limit {
		return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q is longer than %d bytes", field, limit)
	}
	if !utf8.ValidString(v) {
		return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q is not valid UTF-8", field)
	}
	for _, r := range v {
		if unicode.IsControl(r) {
			return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q contains a control character", field)
		}
	}
	if strings.TrimSpace(v) == "" {
		return apiErr(http.StatusBadRequest, CodeInvalidField, "field %q is blank", field)
	}
	return nil
}

func (r JoinRequest) validate() *APIError {
	if e := checkText("identity", r.Identity, maxIdentity, true); e != nil {
		return e
	}
	if e := checkText("name", r.Name, maxName, false); e != nil {
		return e
	}
	if e := checkText("email", r.Email, maxEmail, false); e != nil {
		return e
	}
	if r.Profile != "" && !validProfile(r.Profile) {
		return apiErr(http.StatusBadRequest, CodeInvalidField, "field \"profile\" must be 1-%d lower-case letters, digits, '-' or '_', starting with a letter", maxProfile)
	}
	if r.Email != "" {
		a, err := mail.ParseAddress(r.Email)
		if err != nil || a.Address != r.Email || a.Name != "" {
			return apiErr(http.StatusBadRequest, CodeInvalidField, "field \"email\" is not a plain address like user@example.com")
		}
	}
	return nil
}

func validProfile(p string) bool {
	if len(p) == 0 || len(p) > maxProfile || p[0] < 'a' || p[0] > 'z' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !('a' <= c && c <= 'z') && !('0' <= c && c <= '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// checkStreamID validates the path's stream id (any text; it is sanitized
// into a room name).
func checkStreamID(id string) *APIError {
	if id == "" {
		return apiErr(http.StatusBadRequest, CodeInvalidStreamID, "the stream id is empty")
	}
	if len(id) > maxStreamID {
		return apiErr(http.StatusBadRequest, CodeInvalidStreamID, "the stream id is longer than %d bytes", maxStreamID)
	}
	if !utf8.ValidString(id) {
		return apiErr(http.StatusBadRequest, CodeInvalidStreamID, "the stream id is not valid UTF-8")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return apiErr(http.StatusBadRequest, CodeInvalidStreamID, "the stream id contains a control character")
		}
	}
	return nil
}
