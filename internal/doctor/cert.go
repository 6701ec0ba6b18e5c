package doctor

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jitsi-agent/jitsi-agent/internal/certs"
)

// RootsFunc returns the trust anchors certificate chains are verified against.
type RootsFunc func() (*x509.CertPool, error)

// SystemRoots is the host's trust store.
func SystemRoots() (*x509.CertPool, error) { return x509.SystemCertPool() }

// RenewalState is what the certs package knows about ACME renewal.
type RenewalState struct {
	// LastAttempt and LastSuccess are the times of the last renewal attempt
	// and the last successful issuance (zero = never).
	LastAttempt time.Time
	LastSuccess time.Time
	// LastError is the last attempt's error ("" = it succeeded).
	LastError string
	// NextAttempt is when the next renewal is due (zero = unknown).
	NextAttempt time.Time
}

// RenewalChecker reports certificate renewal health; the lead wires the certs
// package. Used only when the spec configures tls.acme.
type RenewalChecker interface {
	RenewalState(ctx context.Context) (RenewalState, error)
}

const (
	certWarnDays = 14
	idCertFile   = "cert.present"
	idCertDomain = "cert.domain"
	idCertChain  = "cert.chain"
	idCertExpiry = "cert.expiry"
	idCertRenew  = "cert.renewal"
)

func (c *checker) checkCert(ctx context.Context) []Result {
	t := c.d.TLS
	const titleFile = "Certificate and key present and matching"
	const titleDomain = "Certificate covers the domain"
	const titleChain = "Certificate chain complete and trusted"
	const titleExpiry = "Certificate not about to expire"
	skipRest := func(why string) []Result {
		return []Result{
			skip(idCertDomain, titleDomain, why), skip(idCertChain, titleChain, why),
			skip(idCertExpiry, titleExpiry, why), c.checkRenewal(ctx, nil),
		}
	}
	if !c.runs("nginx") && !(c.d.TURN.Enabled && c.runs("coturn")) {
		return []Result{skip(idCertFile, titleFile, "this host runs neither nginx nor coturn")}
	}
	if t.Certificate == "" || t.Key == "" {
		return append([]Result{fail(idCertFile, titleFile, "no certificate or key path configured",
			"set tls.certificate and tls.key, or configure tls.acme")}, skipRest("no certificate")...)
	}
	obtain := "install the certificate (full chain) at " + t.Certificate + " and its key at " + t.Key
	if t.ACME != nil {
		obtain = "let jitsi-agent obtain it (tls.acme is configured: check the agent's log and that port 80 reaches this host)"
	}
	certPEM, err := os.ReadFile(c.hostPath(t.Certificate))
	if err != nil {
		return append([]Result{fail(idCertFile, titleFile, "cannot read certificate: "+pathErr(err, t.Certificate), obtain)},
			skipRest("no certificate")...)
	}
	chain, err := parseCertChain(certPEM)
	if err != nil {
		return append([]Result{fail(idCertFile, titleFile, t.Certificate+": "+err.Error(),
			"replace "+t.Certificate+" with PEM certificates (leaf first, then intermediates); "+obtain)},
			skipRest("certificate unreadable")...)
	}
	leaf := chain[0]
	var out []Result
	out = append(out, c.checkKey(leaf, t.Key, t.Certificate, obtain))
	out = append(out, c.checkCertDomain(leaf))
	out = append(out, c.checkChain(chain))
	out = append(out, c.checkExpiry(leaf))
	out = append(out, c.checkRenewal(ctx, leaf))
	return out
}

func pathErr(err error, path string) string {
	if errors.Is(err, os.ErrNotExist) {
		return path + " does not exist"
	}
	if errors.Is(err, os.ErrPermission) {
		return path + " is not readable (permission denied; run the doctor as root)"
	}
	return err.Error()
}

func parseCertChain(data []byte) ([]*x509.Certificate, error) {
	var chain []*x509.Certificate
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("certificate %d does not parse: %w", len(chain)+1, err)
		}
		chain = append(chain, cert)
	}
	if len(chain) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block found")
	}
	return chain, nil
}

// parsePrivateKey accepts PKCS#8, PKCS#1 and SEC 1 keys. Errors never
// include key material.
func parsePrivateKey(data []byte) (crypto.Signer, error) {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return nil, errors.New("no PEM private key block found")
		}
		if !strings.Contains(b.Type, "PRIVATE KEY") {
			continue
		}
		if k, err := x509.ParsePKCS8PrivateKey(b.Bytes); err == nil {
			if s, ok := k.(crypto.Signer); ok {
				return s, nil
			}
			return nil, errors.New("unsupported private key type")
		}
		if k, err := x509.ParsePKCS1PrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		if k, err := x509.ParseECPrivateKey(b.Bytes); err == nil {
			return k, nil
		}
		return nil, fmt.Errorf("%s block does not parse as PKCS#8, PKCS#1 or SEC 1", b.Type)
	}
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	switch k := a.(type) {
	case *rsa.PublicKey:
		return k.Equal(b)
	case *ecdsa.PublicKey:
		return k.Equal(b)
	case ed25519.PublicKey:
		return k.Equal(b)
	}
	return false
}

func (c *checker) checkKey(leaf *x509.Certificate, keyPath, certPath, obtain string) Result {
	const title = "Certificate and key present and matching"
	st, err := os.Stat(c.hostPath(keyPath))
	if err != nil {
		return fail(idCertFile, title, "cannot read key: "+pathErr(err, keyPath), obtain)
	}
	data, err := os.ReadFile(c.hostPath(keyPath))
	if err != nil {
		return fail(idCertFile, title, "cannot read key: "+pathErr(err, keyPath), obtain)
	}
	key, err := parsePrivateKey(data)
	if err != nil {
		return fail(idCertFile, title, keyPath+": "+err.Error(), "replace "+keyPath+" with the PEM private key of "+certPath)
	}
	if !publicKeysEqual(leaf.PublicKey, key.Public()) {
		return fail(idCertFile, title, keyPath+" does not belong to the certificate in "+certPath,
			"install the private key that was issued with this certificate, or re-issue the certificate for the key in "+keyPath)
	}
	seen := fmt.Sprintf("%s (%s) and matching key %s", certPath, keyAlgo(leaf), keyPath)
	if st.Mode().Perm()&0o004 != 0 {
		return warn(idCertFile, title, seen+fmt.Sprintf("; the key is world-readable (mode %04o)", st.Mode().Perm()),
			"chmod 0640 "+keyPath+" and give its group to the services that read it (e.g. chgrp ssl-cert)")
	}
	return pass(idCertFile, title, seen)
}

func keyAlgo(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		return fmt.Sprintf("RSA %d", k.N.BitLen())
	case *ecdsa.PublicKey:
		return "ECDSA " + k.Curve.Params().Name
	case ed25519.PublicKey:
		return "Ed25519"
	}
	return c.PublicKeyAlgorithm.String()
}

func certNames(c *x509.Certificate) string {
	names := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 && c.Subject.CommonName != "" {
		names = append(names, "CN="+c.Subject.CommonName)
	}
	if len(names) == 0 {
		return "no names"
	}
	return joinMax(names, 6)
}

func (c *checker) checkCertDomain(leaf *x509.Certificate) Result {
	const title = "Certificate covers the domain"
	names := []string{c.d.Domain}
	if c.d.TURN.Enabled && c.d.TURN.Host != "" && c.d.TURN.Host != c.d.Domain {
		names = append(names, c.d.TURN.Host)
	}
	var missing []string
	for _, n := range names {
		if err := leaf.VerifyHostname(n); err != nil {
			missing = append(missing, n)
		}
	}
	seen := "certificate names: " + certNames(leaf)
	if len(missing) > 0 {
		return fail(idCertDomain, title, seen+"; does not cover "+strings.Join(missing, ", "),
			"re-issue the certificate with "+strings.Join(names, ", ")+" as subject alternative name(s)")
	}
	return pass(idCertDomain, title, seen)
}

func isSelfSigned(c *x509.Certificate) bool {
	// CheckSignature, not CheckSignatureFrom: self-signed leaves often lack
	// the CA basic constraint, which CheckSignatureFrom insists on.
	return bytes.Equal(c.RawIssuer, c.RawSubject) &&
		c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature) == nil
}

func (c *checker) checkChain(chain []*x509.Certificate) Result {
	const title = "Certificate chain complete and trusted"
	leaf := chain[0]
	acmeFix := "configure tls.acme so jitsi-agent obtains a Let's Encrypt certificate, or install a certificate from a public CA"
	if isSelfSigned(leaf) {
		return warn(idCertChain, title, "self-signed certificate (subject "+leaf.Subject.String()+")",
			acmeFix+"; browsers warn and the mobile apps refuse self-signed certificates")
	}
	roots, err := c.env.Roots()
	if err != nil || roots == nil {
		return warn(idCertChain, title, fmt.Sprintf("cannot load the system trust store: %v", err),
			"install the ca-certificates package so the chain can be verified")
	}
	inter := x509.NewCertPool()
	for _, ic := range chain[1:] {
		inter.AddCert(ic)
	}
	now := c.env.Now()
	// Expiry is the expiry check's job: verify inside the leaf's validity.
	if now.After(leaf.NotAfter) {
		now = leaf.NotAfter.Add(-time.Second)
	} else if now.Before(leaf.NotBefore) {
		now = leaf.NotBefore.Add(time.Second)
	}
	vc, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		var ua x509.UnknownAuthorityError
		if errors.As(err, &ua) {
			if len(chain) == 1 {
				return fail(idCertChain, title, "the file holds only the leaf certificate, issued by "+leaf.Issuer.String()+
					", and that issuer is not a trusted root",
					"use the full chain (leaf followed by intermediates, e.g. fullchain.pem) as tls.certificate")
			}
			return fail(idCertChain, title, "chain does not lead to a trusted root (issuer "+chain[len(chain)-1].Issuer.String()+")",
				"add the missing intermediate certificate(s) to "+c.d.TLS.Certificate+", or "+acmeFix)
		}
		return fail(idCertChain, title, "chain does not verify: "+err.Error(),
			"replace "+c.d.TLS.Certificate+" with a valid full chain; "+acmeFix)
	}
	var path []string
	for _, cc := range vc[0] {
		n := cc.Subject.CommonName
		if n == "" {
			n = cc.Subject.String()
		}
		path = append(path, n)
	}
	return pass(idCertChain, title, "chain verifies: "+strings.Join(path, " -> "))
}

func (c *checker) checkExpiry(leaf *x509.Certificate) Result {
	const title = "Certificate not about to expire"
	now := c.env.Now()
	renew := "renew the certificate now"
	if c.d.TLS.ACME != nil {
		renew = "check why ACME renewal is not happening (see the cert.renewal check and the agent's log)"
	}
	if now.Before(leaf.NotBefore) {
		return fail(idCertExpiry, title, "not valid until "+leaf.NotBefore.UTC().Format(time.RFC3339),
			"check this host's clock (see clock.ntp); if the clock is right, wait or re-issue the certificate")
	}
	left := leaf.NotAfter.Sub(now)
	date := leaf.NotAfter.UTC().Format("2006-01-02 15:04 MST")
	if certs.IsPlaceholder(leaf) && left > 0 {
		// Short-lived on purpose and refreshed by jitsi-agent until a real
		// certificate exists; cert.chain already says it is not trusted.
		return skip(idCertExpiry, title, fmt.Sprintf("self-signed placeholder, refreshed by jitsi-agent (valid until %s)", date))
	}
	if left <= 0 {
		return fail(idCertExpiry, title, fmt.Sprintf("expired %d day(s) ago (%s)", int(-left.Hours()/24), date), renew)
	}
	days := int(left.Hours() / 24)
	if days < certWarnDays {
		return warn(idCertExpiry, title, fmt.Sprintf("expires in %d day(s) (%s)", days, date), renew)
	}
	return pass(idCertExpiry, title, fmt.Sprintf("expires in %d days (%s)", days, date))
}

func (c *checker) checkRenewal(ctx context.Context, leaf *x509.Certificate) Result {
	const title = "Certificate renewal healthy"
	if c.d.TLS.ACME == nil {
		return skip(idCertRenew, title, "no tls.acme: the certificate is renewed outside jitsi-agent")
	}
	if c.env.Renewal == nil {
		return skip(idCertRenew, title, "renewal state not available in this build")
	}
	st, err := c.env.Renewal.RenewalState(ctx)
	if err != nil {
		return fail(idCertRenew, title, "cannot read renewal state: "+err.Error(),
			"check that the jitsi-agent daemon runs ('systemctl status jitsi-agent') and that its state directory "+c.d.StateDir+" is readable")
	}
	fmtT := func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04 MST")
	}
	seen := "last success " + fmtT(st.LastSuccess)
	if !st.NextAttempt.IsZero() {
		seen += ", next renewal " + fmtT(st.NextAttempt)
	}
	if st.LastError != "" && !st.LastAttempt.Before(st.LastSuccess) {
		seen = "last attempt " + fmtT(st.LastAttempt) + " failed: " + st.LastError + "; " + seen
		fix := "make sure " + c.d.Domain + " resolves to this host and port 80 reaches nginx (ACME HTTP-01), then check the agent's log; it retries automatically"
		if leaf != nil && leaf.NotAfter.Sub(c.env.Now()) < certWarnDays*24*time.Hour {
			return fail(idCertRenew, title, seen, fix)
		}
		return warn(idCertRenew, title, seen, fix)
	}
	if st.LastSuccess.IsZero() && st.LastAttempt.IsZero() {
		return warn(idCertRenew, title, "no renewal has been attempted yet",
			"start the jitsi-agent daemon ('systemctl enable --now jitsi-agent'); it obtains and renews the certificate")
	}
	return pass(idCertRenew, title, seen)
}
