// Package deploy holds the deployment files of the invoicing service — the
// NATS server configurations with their accounts and permissions, the stream
// and consumer definitions, systemd units, a Dockerfile, Kubernetes
// manifests and Prometheus alert rules — and the tests that keep them true:
// the server configurations are loaded by real servers and used by the real
// consumer and publisher binaries under each role's permissions, the stream
// definitions are compared with what pipeline.Topology produces, and the
// alert rules are checked against the metrics the consumer registers.
//
// The package has no Go API; see README.md for the files and how to use
// them.
package deploy
