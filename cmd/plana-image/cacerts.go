package main

import (
	"bytes"
	"encoding/pem"

	"golang.org/x/crypto/x509roots/fallback/bundle"
)

// caSource says where the image's CA certificates come from: Mozilla's NSS
// root store as the Go team packages it, at the version go.mod pins and
// go.sum hashes. The build machine's own bundle (Debian's ca-certificates)
// would make the image depend on what that machine has installed and when
// it was last upgraded, so two machines would build two digests from one
// commit; a bundle copied into the repository would go stale with nobody
// told. This one is updated with `go get`, like any module, and
// govulncheck reports a stale version of it.
const caSource = "CA certificates: golang.org/x/crypto/x509roots/fallback (Mozilla NSS), without constrained roots"

// caBundle is the PEM bundle written to caPath: every NSS root that is
// trusted without conditions. A root with a constraint (NSS's "distrust
// after" date) is left out, because a PEM file cannot carry the
// constraint, and trusting it without it would trust more than NSS does.
func caBundle() []byte {
	var buf bytes.Buffer
	for r := range bundle.Roots() {
		if r.Constraint != nil {
			continue
		}
		// Writing to a bytes.Buffer does not fail.
		_ = pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: r.Certificate})
	}
	return buf.Bytes()
}
