package main

import "golang.org/x/crypto/acme"

// newACMEClient is an ACME client of the CA at directory (a test CA, or
// one other than Let's Encrypt).
func newACMEClient(directory string) *acme.Client { return &acme.Client{DirectoryURL: directory} }
