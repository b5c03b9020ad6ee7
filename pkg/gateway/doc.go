// Package gateway is Tandem's HTTP face: the REST API under /api/v1, the
// signaling WebSocket that it relays over NATS to the worker hosting a
// session, the embedded pages, /healthz, /readyz and /metrics.
//
// A Gateway keeps no session state of its own: records live in the tenant
// store (JetStream KV) and media lives on workers, so any number of gateways
// can serve the same cluster. New builds it; Run consumes worker events (to
// record ended sessions and to know which workers are alive) until its
// context ends; Handler serves HTTP and is safe for concurrent use.
package gateway
