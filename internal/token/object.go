package token

import (
	"encoding/json"
	"strings"
)

// object is a JSON object's top-level members as raw values, in order. Keys
// compare exactly (case-sensitive, as in Lua) and a repeated key's last value
// wins (as with lua-cjson). It avoids decoding nested values Prosody's checks
// never look at.
type object struct {
	keys []string
	vals []json.RawMessage
}

// get returns the raw value of key, nil when absent.
func (o *object) get(key string) json.RawMessage {
	for i := len(o.keys) - 1; i >= 0; i-- {
		if o.keys[i] == key {
			return o.vals[i]
		}
	}
	return nil
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// parseObject parses b, which must be one valid JSON object.
func parseObject(b []byte) (*object, bool) {
	if !json.Valid(b) {
		return nil, false
	}
	i := 0
	ws := func() {
		for i < len(b) && isSpace(b[i]) {
			i++
		}
	}
	ws()
	if i >= len(b) || b[i] != '{' {
		return nil, false
	}
	i++
	o := &object{keys: make([]string, 0, 12), vals: make([]json.RawMessage, 0, 12)}
	text := string(b) // one copy; keys are substrings of it
	for {
		ws()
		if b[i] == '}' {
			return o, true
		}
		if b[i] == ',' {
			i++
			ws()
		}
		end := skipString(b, i)
		key := text[i+1 : end-1]
		if strings.IndexByte(key, '\\') >= 0 {
			if json.Unmarshal(b[i:end], &key) != nil {
				return nil, false
			}
		}
		i = end
		ws()
		i++ // ':'
		ws()
		start := i
		i = skipValue(b, i)
		o.keys = append(o.keys, key)
		o.vals = append(o.vals, json.RawMessage(b[start:i:i]))
	}
}

// skipString returns the index after the string starting at b[i] == '"'.
// b is known to be valid JSON.
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

// skipValue returns the index after the value starting at b[i] in valid JSON.
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
