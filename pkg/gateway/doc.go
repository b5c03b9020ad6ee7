// Package gateway is Tandem's HTTP face: the REST API under /api/v1 (with
// its OpenAPI document, openapi.json, served at /api/v1/openapi.json), the
// signaling WebSocket that it relays over NATS to the worker hosting a
// session, the embedded pages, /healthz, /readyz and /metrics. The API
// includes the company admins' routes (/api/v1/agents, /apikeys, /company)
// and the operator's platform routes (/api/v1/admin/..., only with
// Config.AdminToken).
//
// A Gateway keeps no session state of its own: records live in the tenant
// store (JetStream KV) and media lives on workers, so any number of gateways
// can serve the same cluster. New builds it; Run consumes worker events (to
// record ended sessions, to turn the workers' viewer events into audit
// records, and to know which workers are alive) until its context ends;
// Handler serves HTTP and is safe for concurrent use.
package gateway
