// Package worker hosts co-browse sessions on one machine. A Worker answers
// lease requests from gateways over NATS (queue group "workers" on
// tandem.pool.lease), leases a browser from browserpool for each session and
// runs the session's media pipeline: one capture loop that decodes every
// screencast frame once, one media.RoleEncoder per role (customer, agent)
// whose shared track feeds every viewer of that role, and one rtc.Peer per
// viewer, negotiated through a signaling.Host.
//
// Each session has a gate (gate.go, SECURITY.md P3): agents get no frame and
// no input of theirs is dispatched until a gateway's Gate message
// (tandem.worker.<id>.gate) says the customer agreed; with the lease's
// MustAdmit, nobody gets a frame or has input dispatched until a Gate says
// an agent admitted the customer. Gates only open.
//
// Annotations and chat (annotate.go, docs/annotations.md) are relayed
// between viewers by two more goroutines of each session: one owns their
// state and sends every such notice, in one order; the other asks the
// page's isolated world where highlighted elements are.
//
// Lifecycle: New builds a Worker; Run serves until its context ends, then ends
// every hosted session and returns after all their goroutines have returned.
// A session ends when a gateway asks (tandem.worker.<id>.end), when its
// browser died more often than Config.MaxRestarts allows, when nobody
// watched it for IdleTimeout, when no customer came before its PIN expired,
// or at MaxDuration; the worker then tells the viewers, publishes an "ended"
// event on tandem.session.<company>.<id>.event and destroys the browser.
//
// A browser that dies mid-session is replaced (recovery.go,
// docs/recovery.md): the session's run goroutine stops the loops that use
// the browser (they run under a context of their own), leases a fresh one
// on the same page, swaps it in and starts them again; the encoders and
// the viewers' peers stay.
//
// All exported methods are safe for concurrent use.
package worker
