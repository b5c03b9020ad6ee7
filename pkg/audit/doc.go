// Package audit keeps Tandem's audit trail: who did what, in which company
// and session, and when. Records are metadata only (a PIN, password, token,
// typed text or page content never goes into one) and are written to an
// append-only JetStream stream of their company.
//
// # Streams and subjects
//
// Every company has its own stream, made on the company's first record:
//
//	stream               AUDIT_<company>
//	subjects             tandem.audit.<company>            events of the company (pin.failed)
//	                     tandem.audit.<company>.<session>  events of one session
//
// Company and session are subject tokens (1 to 64 of [A-Za-z0-9_-]), so a
// record of one company can never land in, or be listed from, another's
// stream. The streams use file storage, Config.Replicas replicas, and are
// created with DenyDelete and DenyPurge: the server refuses to delete or
// purge single records or the whole content, and refuses to lift either flag
// afterwards. Records leave a stream only by age: its MaxAge is the company's
// retention (Config.Retention unless SetRetention changed it, never under
// MinRetention). Deleting a whole stream is a NATS API call that JetStream
// does not refuse; this package never makes it, and a deployment on an
// external cluster denies the service's user the subject
// $JS.API.STREAM.DELETE.AUDIT_> (see docs/security.md).
//
// Each record carries a unique ID that is also its JetStream message ID, so
// a Record retried within the duplicate window (two minutes) is stored once.
//
// # Lifecycle
//
// Open returns a *Log on a JetStream context the caller owns; the Log starts
// no goroutines and needs no Close. Its methods are safe for concurrent use,
// also from several processes on the same cluster.
package audit
