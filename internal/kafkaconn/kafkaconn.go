// Package kafkaconn is the one place where Breakwater's Kafka connections
// are configured: it turns the kafka section of the configuration (brokers,
// TLS, SASL) into the kafka-go dialers, transports, clients and reader
// configurations that every Kafka client of the project uses, so that no
// client can connect without the cluster's security settings.
package kafkaconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"syscall"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"go.uber.org/zap"

	"github.com/breakwater/breakwater/config"
)

// dialTimeout bounds one connection attempt, TLS and SASL handshakes
// included.
const dialTimeout = 10 * time.Second

// Endpoint is a Kafka cluster and how to reach it. It is safe for
// concurrent use; every method returns a fresh value.
type Endpoint struct {
	brokers []string
	tls     *tls.Config
	sasl    sasl.Mechanism
}

// New returns the endpoint of the kafka section k: it reads the TLS files
// and the SASL password file, and logs a warning on log when certificate
// verification is turned off. Errors name the configuration key and file,
// never a secret.
func New(k config.Kafka, log *zap.Logger) (*Endpoint, error) {
	if len(k.Brokers) == 0 {
		return nil, errors.New("kafka.brokers: brokers are required, none is configured")
	}
	e := &Endpoint{brokers: slices.Clone(k.Brokers)}
	tc, err := k.TLS.ClientConfig("kafka.tls")
	if err != nil {
		return nil, err
	}
	e.tls = tc
	if k.TLS.InsecureSkipVerify && log != nil {
		log.Warn("kafka.tls.insecure_skip_verify is true: broker certificates are not verified, so anyone on the path can read and change the traffic; use it for a test cluster only")
	}
	if k.SASL.On() {
		pw, err := k.SASL.Secret()
		if err != nil {
			return nil, err
		}
		if e.sasl, err = mechanism(k.SASL.Mechanism, k.SASL.Username, pw); err != nil {
			return nil, err
		}
		if tc == nil && log != nil {
			log.Warn("kafka.sasl is set without kafka.tls: credentials and traffic cross the network unencrypted", zap.String("mechanism", k.SASL.Mechanism))
		}
	}
	return e, nil
}

// Plain returns the endpoint of brokers without TLS or SASL: the embedded
// broker, the tests and clusters that need neither.
func Plain(brokers ...string) *Endpoint {
	return &Endpoint{brokers: slices.Clone(brokers)}
}

// mechanism returns the SASL mechanism named by the configuration.
func mechanism(name, user, password string) (sasl.Mechanism, error) {
	switch name {
	case config.SASLPlain:
		return plain.Mechanism{Username: user, Password: password}, nil
	case config.SASLScramSHA256, config.SASLScramSHA512:
		algo := scram.SHA256
		if name == config.SASLScramSHA512 {
			algo = scram.SHA512
		}
		m, err := scram.Mechanism(algo, user, password)
		if err != nil {
			// The error names the stringprep problem, not the password.
			return nil, fmt.Errorf("kafka.sasl: the user name or password is not valid for SCRAM: %w", err)
		}
		return m, nil
	}
	return nil, fmt.Errorf("kafka.sasl.mechanism: unknown mechanism %q", name)
}

// Brokers returns the bootstrap addresses.
func (e *Endpoint) Brokers() []string { return slices.Clone(e.brokers) }

// Addr returns the bootstrap addresses for a kafka.Writer or kafka.Client.
func (e *Endpoint) Addr() net.Addr { return kafka.TCP(e.brokers...) }

// Secure reports whether connections use TLS.
func (e *Endpoint) Secure() bool { return e.tls != nil }

// Dialer returns a new dialer with the endpoint's TLS and SASL settings,
// for consumer groups, partition readers and direct connections.
func (e *Endpoint) Dialer() *kafka.Dialer {
	return &kafka.Dialer{
		Timeout:       dialTimeout,
		DualStack:     true,
		TLS:           e.tlsConfig(),
		SASLMechanism: e.sasl,
	}
}

// Transport returns a new transport with the endpoint's TLS and SASL
// settings, for a kafka.Writer or a kafka.Client. Its owner closes its
// idle connections when done.
func (e *Endpoint) Transport() *kafka.Transport {
	return &kafka.Transport{
		DialTimeout: dialTimeout,
		TLS:         e.tlsConfig(),
		SASL:        e.sasl,
	}
}

// Client returns an admin and metadata client over tr (from Transport)
// whose requests time out after timeout.
func (e *Endpoint) Client(tr *kafka.Transport, timeout time.Duration) *kafka.Client {
	return &kafka.Client{Addr: e.Addr(), Transport: tr, Timeout: timeout}
}

// Reader completes rc with the endpoint's brokers and dialer.
func (e *Endpoint) Reader(rc kafka.ReaderConfig) kafka.ReaderConfig {
	rc.Brokers = e.Brokers()
	rc.Dialer = e.Dialer()
	return rc
}

// Dial connects to one broker.
func (e *Endpoint) Dial(ctx context.Context, broker string) (*kafka.Conn, error) {
	return e.Dialer().DialContext(ctx, "tcp", broker)
}

// DialLeader connects, through broker, to the leader of topic's partition p.
func (e *Endpoint) DialLeader(ctx context.Context, broker, topic string, p int) (*kafka.Conn, error) {
	return e.Dialer().DialLeader(ctx, "tcp", broker, topic, p)
}

func (e *Endpoint) tlsConfig() *tls.Config {
	if e.tls == nil {
		return nil
	}
	return e.tls.Clone()
}

// ErrRejected marks a failure that retrying cannot mend: a broker refused
// the credentials, or its certificate is not trusted, or one side speaks
// TLS and the other does not.
var ErrRejected = errors.New("rejected by configuration")

// Probe connects to each bootstrap broker once, TLS and SASL handshakes
// included, and returns nil as soon as one accepts. Otherwise it returns
// the failures, each naming its broker; a failure that retrying cannot
// mend (a wrong password, an untrusted certificate) wraps ErrRejected and
// says which configuration key to check.
func (e *Endpoint) Probe(ctx context.Context) error {
	var errs []error
	for _, b := range e.brokers {
		conn, err := e.Dial(ctx, b)
		if err == nil {
			// With TLS 1.3 a refused client certificate shows only on the
			// first exchange.
			if d, ok := ctx.Deadline(); ok {
				_ = conn.SetDeadline(d)
			} else {
				_ = conn.SetDeadline(time.Now().Add(dialTimeout))
			}
			_, err = conn.ApiVersions()
			_ = conn.Close()
			if err == nil {
				return nil
			}
		}
		errs = append(errs, fmt.Errorf("kafka broker %s: %w", b, e.Explain(err)))
	}
	return errors.Join(errs...)
}

// Explain wraps err with what it means for the configuration when it is a
// TLS or SASL failure (and then with ErrRejected); other errors are
// returned as they are.
func (e *Endpoint) Explain(err error) error {
	var (
		unknownCA *x509.UnknownAuthorityError
		verify    *tls.CertificateVerificationError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		record    tls.RecordHeaderError
		op        *net.OpError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &unknownCA), errors.As(err, &verify), errors.As(err, &hostname), errors.As(err, &invalid):
		return fmt.Errorf("%w: the broker's TLS certificate is not trusted (check kafka.tls.ca_file and kafka.tls.server_name): %w", ErrRejected, err)
	case errors.As(err, &record):
		return fmt.Errorf("%w: the broker does not speak TLS on this port (kafka.tls is on; is this the SSL or SASL_SSL listener?): %w", ErrRejected, err)
	case errors.As(err, &op) && op.Op == "remote error":
		// A TLS alert from the broker.
		return fmt.Errorf("%w: the broker refused the TLS handshake (does it require a client certificate, kafka.tls.cert_file and key_file?): %w", ErrRejected, err)
	case errors.Is(err, kafka.SASLAuthenticationFailed):
		return fmt.Errorf("%w: SASL authentication failed (check kafka.sasl.username and the password, %s or kafka.sasl.password_file, and kafka.sasl.mechanism): %w", ErrRejected, config.EnvKafkaSASLPassword, err)
	case errors.Is(err, kafka.UnsupportedSASLMechanism):
		return fmt.Errorf("%w: the broker does not offer this SASL mechanism (check kafka.sasl.mechanism): %w", ErrRejected, err)
	case errors.Is(err, kafka.IllegalSASLState):
		return fmt.Errorf("%w: the broker did not expect a SASL handshake (is this the SASL listener?): %w", ErrRejected, err)
	case e.tls == nil && (errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)):
		return fmt.Errorf("the broker closed the connection (if its listener is SSL or SASL_SSL, set kafka.tls): %w", err)
	case e.tls != nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, os.ErrDeadlineExceeded)):
		return fmt.Errorf("no answer to the TLS handshake (kafka.tls is on; is this the SSL or SASL_SSL listener?): %w", err)
	}
	return err
}
