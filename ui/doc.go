// Package ui serves Tandem's web pages: the agent console (/agent/), the
// customer's PIN form (/join/{company}) and the customer's live view
// (/s/{id}), with their static assets under /assets/, and the one-line
// embed script for a company's own site (/embed.js, from embed/): a help
// button, shown only on the company's allowed origins, that opens its PIN
// entry in a new tab.
//
// The pages are plain HTML, CSS and JavaScript modules embedded with go:embed,
// so the binary needs no front-end build step. They talk to the server only
// through the contracts in docs/api.md (REST under /api/v1/) and
// docs/protocol.md (the signaling WebSocket and the two DataChannels); the
// gateway mounts Handler beside those routes. The live remote tab is one
// shared module (assets/viewer.js) used by the agent and customer pages.
//
// Every page is bilingual: the strings live in assets/i18n/en.json and
// assets/i18n/ja.json, which carry the same keys. The language follows the
// browser until the visitor picks one, and the choice is kept in
// localStorage.
//
// Handler keeps no state beyond the embedded files and is safe for concurrent
// use; it starts no goroutines.
package ui
