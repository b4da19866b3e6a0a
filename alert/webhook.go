package alert

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
)

// The headers of the generic webhook.
const (
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body
	// under the shared secret.
	SignatureHeader = "X-Breakwater-Signature"
	// IdempotencyHeader carries the notification key; a receiver that sees
	// it twice (after a crash between sending and recording) drops the second.
	IdempotencyHeader = "Idempotency-Key"
)

// WebhookPayload is the JSON body of the generic webhook.
type WebhookPayload struct {
	// Version of this format: "1".
	Version string `json:"version"`
	// Key is the notification key, also in the Idempotency-Key header.
	Key string `json:"key"`
	// Status is "firing" or "resolved".
	Status string `json:"status"`
	// Kind is the kind of every event.
	Kind Kind `json:"kind"`
	// Severity is the severity of every event.
	Severity Severity `json:"severity"`
	// Summary is one line for the whole group.
	Summary string `json:"summary"`
	// Events are the events of the group.
	Events []Event `json:"events"`
	// Resolves tells which trip each resolved event ends.
	Resolves []Resolve `json:"resolves,omitempty"`
}

// Webhook posts a signed JSON body to any HTTP endpoint.
type Webhook struct {
	url    string
	secret []byte
	client *http.Client
}

// NewWebhook returns a webhook receiver; secret signs the body and must not
// be empty.
func NewWebhook(url, secret string, client *http.Client) (*Webhook, error) {
	if url == "" || secret == "" {
		return nil, errors.New("alert: a webhook needs a URL and a secret")
	}
	return &Webhook{url: url, secret: []byte(secret), client: client}, nil
}

// Sign returns the SignatureHeader value of body under secret.
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// Verify reports whether sig is the SignatureHeader value of body under secret.
func Verify(secret, body []byte, sig string) bool {
	return hmac.Equal([]byte(Sign(secret, body)), []byte(sig))
}

// Notify posts n.
func (w *Webhook) Notify(ctx context.Context, n Notification) error {
	status := "firing"
	if !n.Firing() {
		status = "resolved"
	}
	body, err := json.Marshal(WebhookPayload{
		Version: "1", Key: n.Key, Status: status, Kind: n.Kind, Severity: n.Severity,
		Summary: groupSummary(n, 1024), Events: n.Events, Resolves: n.Resolves,
	})
	if err != nil {
		return err
	}
	h := http.Header{}
	h.Set(SignatureHeader, Sign(w.secret, body))
	h.Set(IdempotencyHeader, n.Key)
	return post(ctx, w.client, w.url, body, h)
}
