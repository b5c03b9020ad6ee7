// Package bus owns Tandem's connection to NATS with JetStream: either an
// embedded nats-server started in this process (the default for
// `tandem serve`, JetStream on local disk) or an external NATS cluster.
//
// Start connects (starting the embedded server first when Config.URLs is
// empty) and returns a *Bus; a failed Start leaves nothing running. Close
// drains the connection, shuts the embedded server down and waits for its
// shutdown to complete; it is idempotent. All methods are safe for concurrent
// use.
//
// The embedded server listens on 127.0.0.1 with a random port by default and
// has no authentication: anything on the machine can connect to it. Operators
// who need other machines to reach NATS run an external cluster (with its own
// credentials and TLS) and set Config.URLs. With Config.Port = -1 the embedded
// server opens no port at all and only this process can use it.
//
// The server's own log lines are written to the *zap.Logger given to Start,
// named "nats-server"; client connection events go to "bus".
package bus
