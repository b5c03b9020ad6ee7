// Package gateway is Tandem's HTTP face: the REST API under /api/v1 (with
// its OpenAPI document, openapi.json, served at /api/v1/openapi.json), the
// signaling WebSocket that it relays over NATS to the worker hosting a
// session, the embedded pages, /healthz, /readyz and /metrics. The API
// includes the company admins' routes (/api/v1/agents, /apikeys, /company)
// and the operator's platform routes (/api/v1/admin/..., only with
// Config.AdminToken), the customer's consent and an agent's admission
// (consent.go: recorded in the session, then sent to the worker that
// enforces them as a worker.Gate), and the embed script's origin check
// (embed.go, with CORS for the company's allowed origins only).
//
// A Gateway keeps no session state of its own: records live in the tenant
// store (JetStream KV) and media lives on workers, so any number of gateways
// can serve the same cluster. New builds it; Run consumes worker events (to
// record ended sessions, to turn the workers' viewer events into audit
// records and into the agents a session's customer is told about, and to
// know which workers are alive) until its context ends;
// Handler serves HTTP and is safe for concurrent use.
package gateway
