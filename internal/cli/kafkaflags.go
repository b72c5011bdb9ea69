package cli

import (
	"flag"
	"fmt"
	"os"
	"strings"

	"github.com/netsentinel/netsentinel/internal/stream"
)

// envSASLPassword names the environment variable holding the SASL password.
// There is deliberately no --sasl-password flag: argv is visible to every
// user of the machine.
const envSASLPassword = "NETSENTINEL_SASL_PASSWORD"

// kafkaFlags are the connection flags of every command that talks to Kafka.
type kafkaFlags struct {
	brokers          *string
	tls              *bool
	tlsCA            *string
	tlsCert, tlsKey  *string
	tlsSkipVerify    *bool
	saslMechanism    *string
	saslUser         *string
	saslPasswordFile *string
}

func addKafkaFlags(fs *flag.FlagSet) *kafkaFlags {
	return &kafkaFlags{
		brokers:          fs.String("brokers", "127.0.0.1:9092", "Kafka seed brokers, comma-separated `host:port` list"),
		tls:              fs.Bool("tls", false, "connect to the brokers with TLS"),
		tlsCA:            fs.String("tls-ca", "", "PEM `file` of CA certificates to trust (implies --tls)"),
		tlsCert:          fs.String("tls-cert", "", "PEM client certificate `file` (implies --tls; needs --tls-key)"),
		tlsKey:           fs.String("tls-key", "", "PEM client key `file`"),
		tlsSkipVerify:    fs.Bool("tls-insecure-skip-verify", false, "do not verify the brokers' certificates (testing only)"),
		saslMechanism:    fs.String("sasl-mechanism", "", "SASL `mechanism`: plain, scram-sha-256 or scram-sha-512"),
		saslUser:         fs.String("sasl-user", "", "SASL user name"),
		saslPasswordFile: fs.String("sasl-password-file", "", "`file` holding the SASL password (else "+envSASLPassword+")"),
	}
}

// config returns the stream.ClientConfig, reading the SASL password from
// the password file or the environment.
func (k *kafkaFlags) config() (stream.ClientConfig, error) {
	cfg := stream.ClientConfig{
		Brokers:               strings.Split(*k.brokers, ","),
		TLS:                   *k.tls,
		TLSCA:                 *k.tlsCA,
		TLSCert:               *k.tlsCert,
		TLSKey:                *k.tlsKey,
		TLSInsecureSkipVerify: *k.tlsSkipVerify,
		SASLMechanism:         *k.saslMechanism,
		SASLUser:              *k.saslUser,
	}
	if cfg.SASLMechanism != "" {
		if *k.saslPasswordFile != "" {
			b, err := os.ReadFile(*k.saslPasswordFile)
			if err != nil {
				return cfg, fmt.Errorf("sasl password file: %w", err)
			}
			cfg.SASLPassword = strings.TrimRight(string(b), "\r\n")
		} else {
			cfg.SASLPassword = os.Getenv(envSASLPassword)
		}
	}
	if _, err := stream.ClientOptions(cfg); err != nil {
		return cfg, Usagef("kafka: %w", err)
	}
	return cfg, nil
}
