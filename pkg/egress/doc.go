// Package egress keeps the hosted browsers off internal networks
// (SECURITY.md P6): a forward HTTP proxy that every Chromium of the pool is
// pointed at (--proxy-server, with --proxy-bypass-list=<-loopback> so that
// not even localhost goes around it).
//
// Every plain HTTP request (absolute URI) and every CONNECT tunnel (https,
// ws, wss) is checked on its own: the proxy parses the host as a browser
// does (ParseHost: decimal, octal, hex and short IPv4 forms, bracketed IPv6,
// trailing dots, case), resolves a name itself, once, keeps only the
// addresses that are not internal (Internal: loopback, private, link-local
// and metadata, CGNAT, ULA, multicast, reserved, and IPv4 embedded in IPv6
// as mapped, NAT64 or 6to4 addresses), refuses the request when none is
// left, and dials only the addresses it kept, never the name again, so DNS
// rebinding between check and connect cannot reach loopback. The proxy never follows a redirect: the browser
// follows it with a new request, checked again. Config.Allow names the
// exceptions (origins and CIDRs). Refusals answer 403, are counted (Stats,
// and the Proxy is a prometheus.Collector) and logged with the host only.
//
// New listens on a loopback port; Run serves until its context ends; Close
// stops the listener, every request and tunnel, and waits for their
// handlers. A Proxy and a Checker are safe for concurrent use.
package egress
