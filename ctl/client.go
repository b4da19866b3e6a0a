package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxResponse bounds the size of an API answer the CLI reads.
const maxResponse = 64 << 20

// client calls the admin API.
type client struct {
	base  string
	token string
	http  *http.Client
}

// APIError is an error answer of the API.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Message is the API's error message.
	Message string
}

// Error describes the answer for a person.
func (e *APIError) Error() string {
	hint := ""
	switch e.Status {
	case http.StatusUnauthorized:
		hint = " (check --token or " + EnvToken + ")"
	case http.StatusForbidden:
		hint = " (your token's role is too low; see 'breakwaterctl whoami')"
	}
	return fmt.Sprintf("%d %s: %s%s", e.Status, http.StatusText(e.Status), e.Message, hint)
}

// do sends a request with an optional JSON body and decodes the answer into
// out. The raw answer is returned for -o json.
func (c *client) do(ctx context.Context, method, path string, body any, out any) (json.RawMessage, error) {
	_, raw, err := c.send(ctx, method, path, body, out)
	return raw, err
}

// send is do that also returns the status code of a successful answer.
func (c *client) send(ctx context.Context, method, path string, body any, out any) (int, json.RawMessage, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("cannot reach the API at %s: %w", c.base, unwrapURL(err))
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return 0, nil, fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		var e struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
			if len(e.Error) > 200 {
				e.Error = e.Error[:200] + "..."
			}
			if e.Error == "" {
				e.Error = "no details"
			}
		}
		return 0, nil, &APIError{Status: resp.StatusCode, Message: e.Error}
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return 0, nil, fmt.Errorf("the answer of %s %s is not what the CLI expects (is --server a Breakwater daemon?): %w", method, path, err)
		}
	}
	return resp.StatusCode, json.RawMessage(data), nil
}

// unwrapURL drops the *url.Error wrapper, which repeats the URL.
func unwrapURL(err error) error {
	type unwrapper interface{ Unwrap() error }
	if u, ok := err.(unwrapper); ok && u.Unwrap() != nil {
		return u.Unwrap()
	}
	return err
}
