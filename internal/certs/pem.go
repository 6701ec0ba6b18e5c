package certs

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"
)

// Bundle is one certificate chain with its private key, as PEM.
type Bundle struct {
	Slot Slot
	// ChainPEM holds CERTIFICATE blocks, leaf first.
	ChainPEM []byte
	// KeyPEM is the private key (PKCS#8 "PRIVATE KEY" for material this
	// package writes; deployed keys are kept byte for byte).
	KeyPEM []byte
	Leaf   *x509.Certificate
	// Placeholder is true for the self-signed stand-in.
	Placeholder bool
	// Source says where it came from: "acme" (the autocert cache),
	// "deployed" (the files already in place), "placeholder".
	Source string
}

// placeholderOrg marks self-signed placeholders in the Subject.
const placeholderOrg = "jitsi-agent placeholder"

// PlaceholderValidity is how long a placeholder is valid; it is replaced by
// a fresh one when less than PlaceholderRefresh remains.
const (
	PlaceholderValidity = 7 * 24 * time.Hour
	PlaceholderRefresh  = 2 * 24 * time.Hour
)

// IsPlaceholder reports whether c is a placeholder written by this package.
func IsPlaceholder(c *x509.Certificate) bool {
	return c != nil && slices.Contains(c.Subject.Organization, placeholderOrg) &&
		bytes.Equal(c.RawIssuer, c.RawSubject)
}

// NewPlaceholder makes a self-signed certificate for names (the first one is
// the subject CN), with an ECDSA P-256 key, or RSA-2048 for the RSA slot so
// nginx's second ssl_certificate keeps its type.
func NewPlaceholder(s Slot, names []string, now time.Time) (*Bundle, error) {
	var key crypto.Signer
	var err error
	if s.Key == RSA {
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	} else {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	if err != nil {
		return nil, fmt.Errorf("generate placeholder key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, fmt.Errorf("placeholder serial: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: names[0], Organization: []string{placeholderOrg}},
		DNSNames:              names,
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(PlaceholderValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("create placeholder certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse placeholder certificate: %w", err)
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Bundle{Slot: s, ChainPEM: encodeChain([][]byte{der}), KeyPEM: keyPEM, Leaf: leaf,
		Placeholder: true, Source: "placeholder"}, nil
}

func encodeChain(der [][]byte) []byte {
	var b bytes.Buffer
	for _, c := range der {
		_ = pem.Encode(&b, &pem.Block{Type: "CERTIFICATE", Bytes: c})
	}
	return b.Bytes()
}

func encodeKey(key crypto.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("marshal private key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// parseChain reads CERTIFICATE blocks (other blocks are skipped).
func parseChain(b []byte) ([]*x509.Certificate, [][]byte, error) {
	var certs []*x509.Certificate
	var ders [][]byte
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("parse certificate: %w", err)
		}
		certs = append(certs, c)
		ders = append(ders, blk.Bytes)
	}
	if len(certs) == 0 {
		return nil, nil, errors.New("no certificate in PEM data")
	}
	return certs, ders, nil
}

// parseKey reads the first private key block (PKCS#8, SEC1 EC or PKCS#1).
// Errors never include key material.
func parseKey(b []byte) (crypto.Signer, error) {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return nil, errors.New("no private key in PEM data")
		}
		switch blk.Type {
		case "PRIVATE KEY":
			k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("unreadable PKCS#8 private key")
			}
			s, ok := k.(crypto.Signer)
			if !ok {
				return nil, errors.New("unsupported private key type")
			}
			return s, nil
		case "EC PRIVATE KEY":
			k, err := x509.ParseECPrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("unreadable EC private key")
			}
			return k, nil
		case "RSA PRIVATE KEY":
			k, err := x509.ParsePKCS1PrivateKey(blk.Bytes)
			if err != nil {
				return nil, errors.New("unreadable RSA private key")
			}
			return k, nil
		}
	}
}

// keyMatches reports whether key is the private half of leaf's public key.
func keyMatches(leaf *x509.Certificate, key crypto.Signer) bool {
	type equaler interface{ Equal(crypto.PublicKey) bool }
	pub, ok := key.Public().(equaler)
	return ok && pub.Equal(leaf.PublicKey)
}

// keyTypeOf maps a certificate's public key to a KeyType ("" = other).
func keyTypeOf(c *x509.Certificate) KeyType {
	switch c.PublicKey.(type) {
	case *ecdsa.PublicKey:
		return ECDSA
	case *rsa.PublicKey:
		return RSA
	}
	return ""
}

// parseBundle parses a chain and key, checking that they belong together.
func parseBundle(s Slot, chainPEM, keyPEM []byte) (*Bundle, crypto.Signer, [][]byte, error) {
	certs, ders, err := parseChain(chainPEM)
	if err != nil {
		return nil, nil, nil, err
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, nil, nil, err
	}
	if !keyMatches(certs[0], key) {
		return nil, nil, nil, errors.New("private key does not match the certificate")
	}
	return &Bundle{Slot: s, ChainPEM: chainPEM, KeyPEM: keyPEM, Leaf: certs[0],
		Placeholder: IsPlaceholder(certs[0])}, key, ders, nil
}

// parseAutocertEntry splits an autocert cache entry (key block, then the
// chain) into a Bundle with a PKCS#8 key, the form this package deploys.
func parseAutocertEntry(s Slot, data []byte) (*Bundle, error) {
	key, err := parseKey(data)
	if err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", s.CacheKey(), err)
	}
	certs, ders, err := parseChain(data)
	if err != nil {
		return nil, fmt.Errorf("cache entry %s: %w", s.CacheKey(), err)
	}
	if !keyMatches(certs[0], key) {
		return nil, fmt.Errorf("cache entry %s: private key does not match the certificate", s.CacheKey())
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Bundle{Slot: s, ChainPEM: encodeChain(ders), KeyPEM: keyPEM, Leaf: certs[0], Source: "acme"}, nil
}

// autocertEntry encodes a key and chain the way autocert's cache stores them.
func autocertEntry(key crypto.Signer, ders [][]byte) ([]byte, error) {
	var b bytes.Buffer
	switch k := key.(type) {
	case *ecdsa.PrivateKey:
		der, err := x509.MarshalECPrivateKey(k)
		if err != nil {
			return nil, fmt.Errorf("marshal EC key: %w", err)
		}
		_ = pem.Encode(&b, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	case *rsa.PrivateKey:
		_ = pem.Encode(&b, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	default:
		return nil, errors.New("unsupported private key type")
	}
	b.Write(encodeChain(ders))
	return b.Bytes(), nil
}

// coversNames reports whether c is valid for every name.
func coversNames(c *x509.Certificate, names []string) bool {
	for _, n := range names {
		if c.VerifyHostname(n) != nil {
			return false
		}
	}
	return true
}
