package agent

import (
	"errors"
	"sync/atomic"
)

// Readiness is the init's answer to Options.Ready: reports are given only
// between Checked (the initrd's contents checked, Katana about to start
// with the config the reports bind) and Failed (a boot error: the init is
// powering off, and that config will not run). The zero value is not
// ready; it is safe for concurrent use.
type Readiness struct{ state atomic.Int32 }

const (
	checking int32 = iota
	checked
	failed
)

// Checked marks the initrd checked, unless the boot has failed.
func (r *Readiness) Checked() { r.state.CompareAndSwap(checking, checked) }

// Failed marks the boot failed, for good.
func (r *Readiness) Failed() { r.state.Store(failed) }

// Err is nil when reports may be given, else why not.
func (r *Readiness) Err() error {
	switch r.state.Load() {
	case checked:
		return nil
	case failed:
		return errNotReadyFailed
	default:
		return errNotReadyChecking
	}
}

var (
	errNotReadyChecking = errors.New("the init is still checking the initrd against its content list; retry once Katana has started")
	errNotReadyFailed   = errors.New("the boot failed (see the console) and the guest is powering off; a report now would bind a config that does not run")
)
