package kafkaconn_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"go.uber.org/goleak"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/breakwater/breakwater/config"
	"github.com/breakwater/breakwater/internal/kafkaconn"
	"github.com/breakwater/breakwater/internal/testbed"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const (
	user     = "breakwater"
	password = "s3cret-kafka-pw"
)

// securedKafka starts kfake with TLS and SASL (PLAIN, SCRAM-SHA-256 and
// SCRAM-SHA-512 users) and returns it with its CA.
func securedKafka(t *testing.T) (*testbed.Kafka, *testbed.PKI) {
	t.Helper()
	pki := testbed.NewPKI(t)
	k := testbed.StartKafka(t, testbed.Secured(testbed.KafkaSecurity{
		Server: pki.ServerTLS(t, false),
		Client: pki.ClientTLS(t),
		Users: []testbed.SASLUser{
			{Method: "SCRAM-SHA-512", User: user, Password: password},
			{Method: "SCRAM-SHA-256", User: user, Password: password},
			{Method: "PLAIN", User: user, Password: password},
		},
	}))
	return k, pki
}

func kafkaConfig(brokers []string, caFile, mechanism, pw string) config.Kafka {
	k := config.Default().Kafka
	k.Brokers = brokers
	k.TLS = config.TLS{Enabled: true, CAFile: caFile}
	k.SASL = config.SASL{Mechanism: mechanism, Username: user, Password: pw}
	return k
}

// TestSASLSSL writes, reads and lists over SASL_SSL with every mechanism,
// through the writer, reader, client and direct connections the endpoint
// builds.
func TestSASLSSL(t *testing.T) {
	k, pki := securedKafka(t)
	k.CreateTopic(t, "t", 2)
	for _, mech := range []string{config.SASLPlain, config.SASLScramSHA256, config.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := kafkaconn.New(kafkaConfig(k.Addrs(), pki.CAFile(), mech, password), zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			if err := e.Probe(ctx); err != nil {
				t.Fatalf("Probe = %v; want nil", err)
			}
			tr := e.Transport()
			defer tr.CloseIdleConnections()
			w := &kafka.Writer{Addr: e.Addr(), Transport: tr, Topic: "t", Balancer: &kafka.Hash{}, RequiredAcks: kafka.RequireAll, BatchTimeout: time.Millisecond}
			if err := w.WriteMessages(ctx, kafka.Message{Key: []byte(mech), Value: []byte("v-" + mech)}); err != nil {
				t.Fatalf("write over SASL_SSL: %v", err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			meta, err := e.Client(tr, 10*time.Second).Metadata(ctx, &kafka.MetadataRequest{Topics: []string{"t"}})
			if err != nil || len(meta.Topics) != 1 || len(meta.Topics[0].Partitions) != 2 {
				t.Fatalf("Metadata = %+v, %v; want topic t with 2 partitions", meta, err)
			}
			found := false
			for p := range 2 {
				r := kafka.NewReader(e.Reader(kafka.ReaderConfig{Topic: "t", Partition: p, MaxWait: 100 * time.Millisecond}))
				conn, err := e.DialLeader(ctx, e.Brokers()[0], "t", p)
				if err != nil {
					_ = r.Close()
					t.Fatalf("DialLeader: %v", err)
				}
				last, err := conn.ReadLastOffset()
				_ = conn.Close()
				if err != nil {
					_ = r.Close()
					t.Fatal(err)
				}
				for range last {
					m, err := r.ReadMessage(ctx)
					if err != nil {
						_ = r.Close()
						t.Fatalf("read over SASL_SSL: %v", err)
					}
					found = found || string(m.Value) == "v-"+mech
				}
				_ = r.Close()
			}
			if !found {
				t.Errorf("the message written with %s was not read back", mech)
			}
		})
	}
}

// TestRejected: a wrong password, an untrusted certificate, TLS against a
// plain listener and no TLS against a TLS listener end Probe promptly with
// an error naming the cause and the key to check, never the password.
func TestRejected(t *testing.T) {
	k, pki := securedKafka(t)
	plainK := testbed.StartKafka(t)
	other := testbed.NewPKI(t)
	tests := []struct {
		name     string
		cfg      config.Kafka
		rejected bool
		want     string
	}{
		{"wrong password", kafkaConfig(k.Addrs(), pki.CAFile(), config.SASLScramSHA512, "wrong-"+password), true, "SASL authentication failed"},
		{"wrong password plain", kafkaConfig(k.Addrs(), pki.CAFile(), config.SASLPlain, "wrong-"+password), true, "SASL authentication failed"},
		{"untrusted certificate", kafkaConfig(k.Addrs(), other.CAFile(), config.SASLScramSHA512, password), true, "kafka.tls.ca_file"},
		{"tls against a plain listener", kafkaConfig(plainK.Addrs(), pki.CAFile(), "", ""), false, "kafka.tls is on"},
	}
	noTLS := kafkaConfig(k.Addrs(), "", config.SASLScramSHA512, password)
	noTLS.TLS = config.TLS{}
	tests = append(tests, struct {
		name     string
		cfg      config.Kafka
		rejected bool
		want     string
	}{"no tls against a tls listener", noTLS, false, "kafka.tls"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.cfg.SASL.Mechanism == "" {
				tt.cfg.SASL = config.SASL{}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e, err := kafkaconn.New(tt.cfg, zap.NewNop())
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			err = e.Probe(ctx)
			if err == nil {
				t.Fatal("Probe = nil; want an error")
			}
			if took := time.Since(start); took > 20*time.Second {
				t.Errorf("Probe took %s; want a prompt answer", took)
			}
			if errors.Is(err, kafkaconn.ErrRejected) != tt.rejected {
				t.Errorf("Probe = %v; errors.Is(ErrRejected) = %v, want %v", err, !tt.rejected, tt.rejected)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("Probe = %v; want it to say %q", err, tt.want)
			}
			if strings.Contains(err.Error(), password) {
				t.Errorf("Probe error shows the password: %v", err)
			}
		})
	}
}

// TestMutualTLS: a listener that requires a client certificate accepts
// kafka.tls.cert_file/key_file and refuses a client without one.
func TestMutualTLS(t *testing.T) {
	pki := testbed.NewPKI(t)
	k := testbed.StartKafka(t, testbed.Secured(testbed.KafkaSecurity{Server: pki.ServerTLS(t, true), Client: pki.ClientTLS(t)}))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := kafkaConfig(k.Addrs(), pki.CAFile(), "", "")
	cfg.SASL = config.SASL{}
	e, err := kafkaconn.New(cfg, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Probe(ctx); !errors.Is(err, kafkaconn.ErrRejected) || !strings.Contains(err.Error(), "kafka.tls.cert_file") {
		t.Errorf("Probe without a client certificate = %v; want ErrRejected naming kafka.tls.cert_file", err)
	}
	client := pki.Issue(t, "breakwater")
	cfg.TLS.CertFile, cfg.TLS.KeyFile = client.CertFile, client.KeyFile
	if e, err = kafkaconn.New(cfg, zap.NewNop()); err != nil {
		t.Fatal(err)
	}
	if err := e.Probe(ctx); err != nil {
		t.Errorf("Probe with a client certificate = %v; want nil", err)
	}
}

// TestNew covers the password file, the warnings and the file errors.
func TestNew(t *testing.T) {
	dir := t.TempDir()
	pwFile := filepath.Join(dir, "pw")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	k, pki := securedKafka(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := kafkaConfig(k.Addrs(), pki.CAFile(), config.SASLScramSHA512, "")
	cfg.SASL.PasswordFile = pwFile
	core, logs := observer.New(zap.InfoLevel)
	e, err := kafkaconn.New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Probe(ctx); err != nil {
		t.Errorf("Probe with the password from a file = %v; want nil", err)
	}
	if logs.Len() != 0 {
		t.Errorf("New logged %v; want nothing", logs.All())
	}

	cfg.TLS = config.TLS{InsecureSkipVerify: true}
	e, err = kafkaconn.New(cfg, zap.New(core))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Probe(ctx); err != nil {
		t.Errorf("Probe with insecure_skip_verify = %v; want nil", err)
	}
	if w := logs.FilterMessageSnippet("insecure_skip_verify").FilterLevelExact(zap.WarnLevel); w.Len() != 1 {
		t.Errorf("New with insecure_skip_verify logged %v; want one warning naming it", logs.All())
	}

	for name, c := range map[string]config.Kafka{
		"missing CA":       {Brokers: []string{"k:9092"}, TLS: config.TLS{CAFile: filepath.Join(dir, "none.pem")}},
		"CA not PEM":       {Brokers: []string{"k:9092"}, TLS: config.TLS{CAFile: pwFile}},
		"bad key pair":     {Brokers: []string{"k:9092"}, TLS: config.TLS{CertFile: pwFile, KeyFile: pwFile}},
		"missing password": {Brokers: []string{"k:9092"}, SASL: config.SASL{Mechanism: config.SASLPlain, Username: "u", PasswordFile: filepath.Join(dir, "none")}},
	} {
		_, err := kafkaconn.New(c, zap.NewNop())
		if err == nil {
			t.Errorf("New(%s) = nil error; want one", name)
			continue
		}
		if !strings.Contains(err.Error(), "kafka.") {
			t.Errorf("New(%s) = %v; want the configuration key named", name, err)
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("New(%s) shows the password file's content: %v", name, err)
		}
	}
}
