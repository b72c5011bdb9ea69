package stream

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/testkit"
)

// TestClientOptionsTLS connects to a TLS-only kfake broker: with the CA file
// it works, without it verification fails, and skip-verify works.
func TestClientOptionsTLS(t *testing.T) {
	ca := testkit.SelfSigned(t)
	cert, caPath := ca.TLS, ca.PEMFile
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.TLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	brokers := c.ListenAddrs()
	ping := func(cfg ClientConfig) error {
		opts, err := ClientOptions(cfg)
		if err != nil {
			return err
		}
		cl, err := kgo.NewClient(append(opts, kgo.RequestRetries(0))...)
		if err != nil {
			return err
		}
		defer cl.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		return cl.Ping(ctx)
	}
	if err := ping(ClientConfig{Brokers: brokers, TLSCA: caPath}); err != nil {
		t.Errorf("TLS with the CA: %v", err)
	}
	if err := ping(ClientConfig{Brokers: brokers, TLSInsecureSkipVerify: true}); err != nil {
		t.Errorf("TLS skipping verification: %v", err)
	}
	if err := ping(ClientConfig{Brokers: brokers, TLS: true}); err == nil {
		t.Error("TLS without the CA verified a self-signed certificate")
	}
	if err := ping(ClientConfig{Brokers: brokers}); err == nil {
		t.Error("plaintext client talked to a TLS broker")
	}
}
