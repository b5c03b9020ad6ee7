package main

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/acme/autocert"
)

// HTTPS (docs/configuration.md): from a certificate and key in PEM files,
// or from an ACME CA (Let's Encrypt by default) for the names given, with
// the TLS-ALPN-01 challenge on the same port, so no port 80 is needed.
// TLS 1.2 at least (1.3 is preferred by Go); TLS 1.2 only with AEAD
// ECDHE suites. With TLS on, cookies are Secure and responses carry HSTS.

// tlsSuites12 are the TLS 1.2 suites offered: forward secret, AEAD only.
// (TLS 1.3's are all AEAD and not configurable.)
var tlsSuites12 = []uint16{
	tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
	tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
}

// tlsOn says whether serve terminates TLS itself.
func (c serveConfig) tlsOn() bool { return c.TLSCert != "" || len(c.ACMEDomains) > 0 }

// validateTLS checks the TLS flags together.
func (c serveConfig) validateTLS() error {
	switch {
	case (c.TLSCert == "") != (c.TLSKey == ""):
		return fmt.Errorf("%w: --tls-cert and --tls-key go together", errUsage)
	case c.TLSCert != "" && len(c.ACMEDomains) > 0:
		return fmt.Errorf("%w: --acme-domain and --tls-cert exclude each other", errUsage)
	case len(c.ACMEDomains) == 0 && (c.ACMEEmail != "" || c.ACMEDirectory != ""):
		return fmt.Errorf("%w: --acme-email and --acme-directory need --acme-domain", errUsage)
	}
	for _, d := range c.ACMEDomains {
		if d == "" || strings.ContainsAny(d, "/:* ") {
			return fmt.Errorf("%w: --acme-domain %q is not a host name", errUsage, d)
		}
	}
	return nil
}

// tlsConfig builds the listener's TLS configuration, or nil when TLS is
// off.
func (c serveConfig) tlsConfig() (*tls.Config, error) {
	if !c.tlsOn() {
		return nil, nil
	}
	var cfg *tls.Config
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("load TLS certificate: %w", err)
		}
		cfg = &tls.Config{Certificates: []tls.Certificate{cert}}
	} else {
		dir := filepath.Join(c.Data, "acme")
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("ACME cache: %w", err)
		}
		m := &autocert.Manager{
			Prompt:     autocert.AcceptTOS,
			HostPolicy: autocert.HostWhitelist(c.ACMEDomains...),
			Cache:      autocert.DirCache(dir),
			Email:      c.ACMEEmail,
		}
		if c.ACMEDirectory != "" {
			m.Client = newACMEClient(c.ACMEDirectory)
		}
		cfg = m.TLSConfig()
	}
	cfg.MinVersion = tls.VersionTLS12
	cfg.CipherSuites = tlsSuites12
	cfg.NextProtos = append(cfg.NextProtos, "h2", "http/1.1")
	return cfg, nil
}
