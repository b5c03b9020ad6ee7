// Package demo is the small shop that Tandem's hosted browser visits under
// /demo/ for demonstrations and end-to-end tests: a product list, product
// pages, a checkout form with card fields, and an account page with a
// password field and content marked data-tandem-mask.
//
// The checkout's "Buy now" button is marked data-tandem-block; it posts to
// /demo/api/buy, which counts purchases, and /demo/api/stats reports the
// count. Security tests read that count to prove that an agent could not
// press the button. The count lives in memory, one per Handler, guarded by a
// mutex; the pages and assets are embedded with go:embed.
//
// A Handler is safe for concurrent use and starts no goroutines.
package demo
