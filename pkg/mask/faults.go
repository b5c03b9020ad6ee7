package mask

import (
	"errors"
	"sync/atomic"
)

// ErrInjected is the error of an injected failure.
var ErrInjected = errors.New("mask: injected failure")

// Faults injects failures into the mask path, for tests that prove it
// fails closed. The zero value injects nothing; a nil *Faults too. It is
// safe for concurrent use.
type Faults struct {
	panics      atomic.Bool
	fails       atomic.Bool
	dropReports atomic.Bool
}

// SetPanic makes the mask path panic on every frame while on.
func (f *Faults) SetPanic(on bool) { f.panics.Store(on) }

// SetFail makes the mask path return an error on every frame while on.
func (f *Faults) SetFail(on bool) { f.fails.Store(on) }

// SetDropReports throws the page script's reports away while on, as if the
// script were gone.
func (f *Faults) SetDropReports(on bool) { f.dropReports.Store(on) }

// check runs at the start of every frame's masking.
func (f *Faults) check() error {
	if f == nil {
		return nil
	}
	if f.panics.Load() {
		panic("mask: injected panic")
	}
	if f.fails.Load() {
		return ErrInjected
	}
	return nil
}

// dropping reports whether reports are to be thrown away.
func (f *Faults) dropping() bool { return f != nil && f.dropReports.Load() }
