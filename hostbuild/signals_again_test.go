package main

import (
	"bytes"
	"context"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// The signals interruptContext queued are sent again, unless a command's
// own channel took them (ownSignals: run, which would count one sent again
// late as a second signal and kill QEMU).
func TestSendAgainUnlessOwned(t *testing.T) {
	for _, owned := range []bool{false, true} {
		sigs := make(chan os.Signal, 3)
		sigs <- syscall.SIGTERM
		sigs <- syscall.SIGHUP
		var sent []os.Signal
		sendAgain(sigs, func() bool { return owned }, func(s os.Signal) { sent = append(sent, s) })
		want := []os.Signal{syscall.SIGTERM, syscall.SIGHUP}
		if owned {
			want = nil
		}
		if !slices.Equal(sent, want) || len(sigs) != 0 {
			t.Errorf("owned %v: sent %v, %d left queued; want %v, none left", owned, sent, len(sigs), want)
		}
	}
}

// ownSignals marks the context's owner; on a context without one (a test's
// own) it does nothing.
func TestOwnSignals(t *testing.T) {
	o := &signalOwner{}
	ctx := context.WithValue(context.Background(), signalOwnerKey{}, o)
	ownSignals(ctx)
	if !o.owned.Load() {
		t.Error("ownSignals did not mark the owner")
	}
	ownSignals(context.Background()) // no owner: no panic
}

// run takes the interrupt signals on its own channel before QEMU starts,
// and says so (ownSignals): interruptContext then sends none again.
func TestRunOwnsSignals(t *testing.T) {
	f := newRunFixture(t)
	fake := fakeQEMUScript(t, f.dir, fakeCleanBoot)
	o := &signalOwner{}
	ctx := context.WithValue(context.Background(), signalOwnerKey{}, o)
	var out, errb bytes.Buffer
	code := run(ctx, []string{"run", "--manifest", f.manifest, "--kernel", f.kernel, "--initrd", f.initrd, "--plain", "--qemu", fake}, &out, &errb)
	if code != exitOK || !strings.Contains(errb.String(), "qemu started") {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	if !o.owned.Load() {
		t.Error("run started QEMU without taking the signals as its own: interruptContext would send them again")
	}
}
