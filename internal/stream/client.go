package stream

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms accepted in ClientConfig.SASLMechanism.
const (
	SASLPlain       = "plain"
	SASLScramSHA256 = "scram-sha-256"
	SASLScramSHA512 = "scram-sha-512"
)

// ClientConfig holds the connection settings shared by every Kafka client
// netsentinel opens: seed brokers, TLS and SASL.
type ClientConfig struct {
	// Brokers are the seed brokers, host:port.
	Brokers []string
	// ClientID is sent to the brokers; empty means "netsentinel".
	ClientID string

	// TLS enables TLS. It is implied by any of the TLS* fields below.
	TLS bool
	// TLSCA is a PEM file of CAs to trust instead of the system pool.
	TLSCA string
	// TLSCert and TLSKey are a PEM client certificate and key (both or
	// neither).
	TLSCert, TLSKey string
	// TLSInsecureSkipVerify disables server certificate checks (testing
	// only).
	TLSInsecureSkipVerify bool

	// SASLMechanism is "", "plain", "scram-sha-256" or "scram-sha-512".
	SASLMechanism string
	// SASLUser and SASLPassword are the SASL credentials. The CLI reads the
	// password from the environment or a file, never from the command line.
	SASLUser, SASLPassword string

	// DialTimeout bounds each connection attempt; zero means 10s.
	DialTimeout time.Duration
}

// NewClient returns a franz-go client for cfg with the extra options.
func NewClient(cfg ClientConfig, extra ...kgo.Opt) (*kgo.Client, error) {
	opts, err := ClientOptions(cfg)
	if err != nil {
		return nil, err
	}
	return kgo.NewClient(append(opts, extra...)...)
}

// ClientOptions returns the franz-go options for cfg: seed brokers, client
// ID, TLS and SASL. It reads the TLS files named in cfg.
func ClientOptions(cfg ClientConfig) ([]kgo.Opt, error) {
	var brokers []string
	for _, b := range cfg.Brokers {
		for _, s := range strings.Split(b, ",") {
			if s = strings.TrimSpace(s); s != "" {
				brokers = append(brokers, s)
			}
		}
	}
	if len(brokers) == 0 {
		return nil, errors.New("no brokers")
	}
	id := cfg.ClientID
	if id == "" {
		id = "netsentinel"
	}
	dial := cfg.DialTimeout
	if dial <= 0 {
		dial = 10 * time.Second
	}
	opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(id), kgo.DialTimeout(dial)}

	if cfg.TLS || cfg.TLSCA != "" || cfg.TLSCert != "" || cfg.TLSKey != "" || cfg.TLSInsecureSkipVerify {
		tc, err := tlsConfig(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}

	mech := strings.ToLower(strings.TrimSpace(cfg.SASLMechanism))
	if mech == "" {
		if cfg.SASLUser != "" {
			return nil, errors.New("sasl user given without a sasl mechanism")
		}
		return opts, nil
	}
	if cfg.SASLUser == "" {
		return nil, fmt.Errorf("sasl mechanism %s needs a user", mech)
	}
	if cfg.SASLPassword == "" {
		return nil, fmt.Errorf("sasl mechanism %s needs a password", mech)
	}
	switch mech {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsMechanism()))
	case SASLScramSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsSha256Mechanism()))
	case SASLScramSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: cfg.SASLUser, Pass: cfg.SASLPassword}.AsSha512Mechanism()))
	default:
		return nil, fmt.Errorf("unknown sasl mechanism %q (want plain, scram-sha-256 or scram-sha-512)", cfg.SASLMechanism)
	}
	return opts, nil
}

func tlsConfig(cfg ClientConfig) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.TLSInsecureSkipVerify} //nolint:gosec // opt-in for tests
	if cfg.TLSCA != "" {
		pem, err := os.ReadFile(cfg.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("tls ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("tls ca %s: no PEM certificates found", cfg.TLSCA)
		}
		tc.RootCAs = pool
	}
	if (cfg.TLSCert == "") != (cfg.TLSKey == "") {
		return nil, errors.New("tls cert and tls key must be given together")
	}
	if cfg.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("tls client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
