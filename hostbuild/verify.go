package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/katana-tee/snpboot/hostbuild/internal/attest"
)

func init() {
	register(command{name: "verify", summary: "re-check an evidence folder written by 'attest --evidence-out' offline", run: runVerify})
}

const verifyUsage = `Usage: hostbuild verify DIR --manifest FILE --min-tcb TCB|none [flags]

Re-runs every check of 'hostbuild attest' on an evidence folder written by
'hostbuild attest --evidence-out DIR', offline: the certificates recorded
in DIR (vcek.pem, ...) are used unless --certs is given, and nothing is
fetched unless --kds is given. The nonce is the one recorded in DIR, so
freshness is not checked (that was attest's job), unless --nonce gives
the one you chose and handed whoever ran 'attest --nonce': the report
must then bind it, so it was made after you chose it. What is
checked is response.json; report.bin, certs.bin, preimage.bin and
config.json restate parts of it and are refused (exit 1) if they differ.
A --manifest other than the one attest recorded (manifest.sha256) is
used, with a warning naming both digests.
The certificates are checked against this machine's clock now, not as of
the fetch: once DIR's VCEK or VLEK has expired (its notAfter), the same
folder fails with exit 4.

Exit status: as for 'hostbuild attest' (0 verified, 1 other failure,
2 usage, 4 chain or signature, 5 REPORT_DATA or nonce, 6 measurement,
7 policy, VMPL, report version, TCB, mitigation vector, chip, platform,
HOST_DATA or ID block).

Flags:
`

func runVerify(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("verify", verifyUsage, stderr)
	vf := verifyFlags{cmd: "verify"}
	vf.register(fs)
	nonceHex := fs.String("nonce", "", "the nonce (`hex`) you gave whoever fetched the report ('hostbuild attest --nonce'): the report must bind it, which makes it fresh as of when you chose it")
	usage := func(msg string) int {
		fmt.Fprintf(stderr, "hostbuild verify: %s\nrun 'hostbuild verify -h' for the flags\n", msg)
		return exitUsage
	}
	// Accept flags before and after DIR.
	pos, code, ok := parseFlagsInterspersed(fs, args)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		return usage("the evidence folder DIR is required")
	}
	if len(pos) > 1 {
		return usage(fmt.Sprintf("unexpected arguments %q", pos[1:]))
	}
	dir := pos[0]
	var challenge []byte
	if given(fs, "nonce") {
		var err error
		if challenge, err = parseNonceFlag(*nonceHex); err != nil {
			return usage(err.Error())
		}
	}
	_, opts, err := vf.options()
	var ue usageError
	if errors.As(err, &ue) {
		return usage(ue.msg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild verify: %v\n", err)
		return exitFail
	}
	resp, nonce, certs, err := attest.ReadEvidence(dir)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild verify: %v\n", err)
		return exitFail
	}
	// Verifying against another manifest than attest did is allowed (a
	// newer one, say), but say so: the result is against --manifest.
	rec, err := attest.RecordedManifestDigest(dir)
	if err != nil {
		fmt.Fprintf(stderr, "hostbuild verify: %v\n", err)
		return exitFail
	}
	if got := hex.EncodeToString(vf.manifestSHA256[:]); rec != "" && rec != got {
		vf.warnings = append(vf.warnings, fmt.Sprintf("attest verified this evidence against a manifest with SHA-256 %s (%s), not --manifest %s (SHA-256 %s): this result is against --manifest", rec, attest.FileManifestDigest, vf.manifest, got))
	}
	if vf.certs == "" {
		opts.Certs = certs
	}
	if challenge != nil {
		// The verifier's own nonce, as attest's: a report binding it
		// was made after the verifier chose it.
		opts.Nonce = challenge
	} else {
		// The nonce is the folder's: nothing here shows the report is fresh.
		vf.warnings = append(vf.warnings, fmt.Sprintf("freshness not checked: the nonce is the folder's (%s), chosen when the report was fetched, not by this run; the result says what the guest was then, and whoever wrote the folder could have chosen it (give the operator a nonce of yours for 'attest --nonce', and check its evidence with --nonce)", attest.FileNonce))
		opts.Nonce = nonce
	}
	return verifyAndReport(ctx, resp, opts, &vf, "", stdout, stderr, newLogger(stderr, vf.verbose))
}
