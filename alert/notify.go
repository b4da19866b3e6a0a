package alert

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Notification is one group of events as sent to one receiver.
type Notification struct {
	// Key identifies the group across replicas and retries; receivers get it
	// as their idempotency key.
	Key string
	// Kind is the kind of every event of the group.
	Kind Kind
	// Severity is the severity of every event of the group.
	Severity Severity
	// Events are the events of the group, in the order they were raised.
	Events []Event
	// Resolves tells, for resolved events, which trip each one ends.
	Resolves []Resolve
	// AdminURL is the base URL of the admin API, or "".
	AdminURL string
}

// Resolve is what the outbox knows about the trip a resolved event ends.
type Resolve struct {
	// EventID is the resolved event.
	EventID string `json:"event_id"`
	// Incident is the incident of the trip.
	Incident string `json:"incident"`
	// TripKey is the Key of the notification that carried the trip.
	TripKey string `json:"trip_key"`
	// GroupClosed is true when this resolve ended the last open incident of
	// the trip's group.
	GroupClosed bool `json:"group_closed"`
}

// Firing reports whether n begins conditions (false: it resolves them).
func (n Notification) Firing() bool { return !n.Kind.Resolves() }

// GroupDedupKey is the dedup key of a group of trips: a storm pages once, under
// one key, and is resolved when its last incident closes.
func GroupDedupKey(key string) string { return "breakwater/" + key }

// Notifier sends a notification to one receiver. It returns nil when the
// receiver accepted it, a *DeliveryError for an answer of the receiver, and
// any other error for a failure to reach it (retried). Errors never contain
// the receiver's URL or secret.
type Notifier interface {
	Notify(ctx context.Context, n Notification) error
}

// DeliveryError is an unsuccessful answer of a receiver.
type DeliveryError struct {
	// Status is the HTTP status code.
	Status int
	// RetryAfter is the delay the receiver asked for (429, 503), or 0.
	RetryAfter time.Duration
}

// Error returns the status; never the URL.
func (e *DeliveryError) Error() string {
	return fmt.Sprintf("receiver answered %d %s", e.Status, http.StatusText(e.Status))
}

// Permanent reports whether retrying cannot help: any answer below 500
// (a redirect, which is not followed, or a 4xx) but 408 and 429.
func (e *DeliveryError) Permanent() bool {
	return e.Status < 500 && e.Status != http.StatusRequestTimeout && e.Status != http.StatusTooManyRequests
}

// permanent reports whether err is a receiver answer that no retry can change.
func permanent(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent()
}

// post sends body to target with the headers and classifies the answer.
// The returned error never contains target: a transport error is reported
// without its URL and with the host replaced.
func post(ctx context.Context, client *http.Client, target string, body []byte, header http.Header) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return errors.New("build request: invalid receiver URL (value not shown)")
	}
	for k, vs := range header {
		req.Header[k] = vs
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "breakwater")
	resp, err := client.Do(req)
	if err != nil {
		return redactTransport(err, req.URL)
	}
	defer func() { _ = resp.Body.Close() }()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	return &DeliveryError{Status: resp.StatusCode, RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now())}
}

// transportError is a failure to reach a receiver, with the URL removed.
type transportError struct {
	msg     string
	timeout bool
	err     error
}

// Error returns the message, which has no URL in it.
func (e *transportError) Error() string { return e.msg }

// Timeout reports whether the request timed out.
func (e *transportError) Timeout() bool { return e.timeout }

// Unwrap returns the context error, if the request was cancelled, so that
// errors.Is(err, context.Canceled) holds; nothing that could show the URL.
func (e *transportError) Unwrap() error { return e.err }

// redactTransport turns a client error into one without the URL or host.
func redactTransport(err error, u *url.URL) error {
	te := &transportError{}
	var ue *url.Error
	inner := err
	if errors.As(err, &ue) {
		inner = ue.Err
		te.timeout = ue.Timeout()
	}
	switch {
	case errors.Is(err, context.Canceled):
		te.err = context.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		te.err = context.DeadlineExceeded
		te.timeout = true
	}
	msg := inner.Error()
	for _, s := range []string{u.String(), u.Redacted(), u.Host, u.Hostname(), u.Path, u.RawQuery} {
		if s != "" && s != "/" {
			msg = strings.ReplaceAll(msg, s, "<receiver>")
		}
	}
	if te.timeout {
		te.msg = "post: timeout: " + msg
	} else {
		te.msg = "post: " + msg
	}
	return te
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0
		}
		return time.Duration(min(s, 24*3600)) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), 24*time.Hour)
	}
	return 0
}
