package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"time"
)

const (
	stunMagic          = 0x2112A442
	stunBindingRequest = 0x0001
	stunBindingSuccess = 0x0101
	stunBindingError   = 0x0111
	attrXORMapped      = 0x0020
)

// stunBinding sends a STUN binding request (RFC 5389) and waits for the
// success response to the same transaction, retransmitting every 500 ms.
func stunBinding(ctx context.Context, addr string) error {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "udp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	req := make([]byte, 20)
	binary.BigEndian.PutUint16(req[0:], stunBindingRequest)
	binary.BigEndian.PutUint32(req[4:], stunMagic)
	if _, err := rand.Read(req[8:20]); err != nil {
		return err
	}
	tid := req[8:20]
	buf := make([]byte, 1500)
	var last error
	for {
		if _, err := conn.Write(req); err != nil {
			last = err // ICMP port unreachable shows up here on the next write
		}
		dl := time.Now().Add(500 * time.Millisecond)
		if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
			dl = cd
		}
		_ = conn.SetReadDeadline(dl)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				var ne net.Error
				if !errors.As(err, &ne) || !ne.Timeout() {
					last = err
				}
				break
			}
			if ok, err := stunResponse(buf[:n], tid); ok {
				return err
			}
		}
		if ctx.Err() != nil {
			if last != nil {
				return fmt.Errorf("no STUN answer from %s: %w", addr, last)
			}
			return fmt.Errorf("no STUN answer from %s", addr)
		}
	}
}

// stunResponse reports whether msg answers transaction tid, and whether as
// a success carrying a mapped address.
func stunResponse(msg, tid []byte) (bool, error) {
	if len(msg) < 20 || binary.BigEndian.Uint32(msg[4:]) != stunMagic || !bytes.Equal(msg[8:20], tid) {
		return false, nil
	}
	typ := binary.BigEndian.Uint16(msg[0:])
	length := int(binary.BigEndian.Uint16(msg[2:]))
	if 20+length > len(msg) {
		return true, errors.New("truncated STUN response")
	}
	switch typ {
	case stunBindingSuccess:
	case stunBindingError:
		return true, errors.New("STUN binding error response")
	default:
		return true, fmt.Errorf("unexpected STUN message type %#04x", typ)
	}
	attrs := msg[20 : 20+length]
	for len(attrs) >= 4 {
		t := binary.BigEndian.Uint16(attrs[0:])
		l := int(binary.BigEndian.Uint16(attrs[2:]))
		if 4+l > len(attrs) {
			break
		}
		if t == attrXORMapped && l >= 8 {
			return true, nil
		}
		next := 4 + (l+3)&^3
		if next > len(attrs) {
			break
		}
		attrs = attrs[next:]
	}
	return true, errors.New("STUN binding success without XOR-MAPPED-ADDRESS")
}
