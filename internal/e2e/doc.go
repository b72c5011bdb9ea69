// Package e2e holds end-to-end tests only: they run the built netsentinel
// binary against the real Apache Kafka broker that `make test` starts
// (train, publish, detect killed with SIGKILL and restarted, then stopped
// with SIGTERM) and check that the books balance. They skip when
// NETSENTINEL_TEST_BROKERS is unset.
package e2e
