package event

import (
	"encoding/json"
	"testing"
	"time"
)

// realisticEvent is a typical action event as a moderation pipeline publishes
// it, with the optional members and some that Breakwater ignores.
const realisticEvent = `{"schema_version":1,"action_id":"act_01J9ZQ3K7X8V2M4N6P8R0T2W4Y",` +
	`"rule_id":"spam/link-farm/v3","action":"ban_account",` +
	`"target":{"type":"account","id":"u_8812736451","created_at":"2019-06-01T12:00:00Z"},` +
	`"occurred_at":"2025-03-14T09:26:53.589793238Z",` +
	`"model":{"name":"spam-classifier","version":"2025.03.1","confidence":0.973},` +
	`"region":"eu-west-1","source":"auto","labels":["spam","link"],"dry_run":false}`

// stdlibEvent is the struct that a consumer would decode an event into with
// encoding/json.
type stdlibEvent struct {
	ActionID string `json:"action_id"`
	RuleID   string `json:"rule_id"`
	Action   string `json:"action"`
	Target   struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	} `json:"target"`
	OccurredAt time.Time `json:"occurred_at"`
	Model      struct {
		Name       string  `json:"name"`
		Version    string  `json:"version"`
		Confidence float64 `json:"confidence"`
	} `json:"model"`
	Region string `json:"region"`
}

func BenchmarkDecode(b *testing.B) {
	value := []byte(realisticEvent)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	var a Action
	for b.Loop() {
		if err := DecodeInto(&a, value); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStdlibUnmarshal(b *testing.B) {
	value := []byte(realisticEvent)
	b.SetBytes(int64(len(value)))
	b.ReportAllocs()
	for b.Loop() {
		var e stdlibEvent
		if err := json.Unmarshal(value, &e); err != nil {
			b.Fatal(err)
		}
	}
}
