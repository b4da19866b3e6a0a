package alert

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// Slack's limits that a message must stay within: at most 50 blocks, 150
// characters of header text, 3000 of section text. Breakwater stays well
// below the total (the service rejects long block messages before the
// documented 40000 characters of text) and sends at most slackEvents
// sections, then a line with how many more.
const (
	slackMaxBlocks  = 50
	slackHeaderText = 150
	slackSection    = 3000
	slackText       = 3000
	slackEvents     = 20
	slackTotal      = 12000
)

// SlackMessage is the body of a Slack incoming webhook.
type SlackMessage struct {
	// Text is the fallback and notification text.
	Text string `json:"text"`
	// Blocks is the Block Kit layout.
	Blocks []SlackBlock `json:"blocks"`
}

// SlackBlock is one Block Kit block (header, section, context or divider).
type SlackBlock struct {
	// Type is the block type.
	Type string `json:"type"`
	// Text is the block's text, for header and section blocks.
	Text *SlackText `json:"text,omitempty"`
	// Elements are the texts of a context block.
	Elements []SlackText `json:"elements,omitempty"`
}

// SlackText is a Block Kit text object.
type SlackText struct {
	// Type is plain_text or mrkdwn.
	Type string `json:"type"`
	// Text is the text.
	Text string `json:"text"`
}

// Slack posts to a Slack incoming webhook. The webhook URL is the secret.
type Slack struct {
	url    string
	client *http.Client
}

// NewSlack returns a Slack receiver.
func NewSlack(url string, client *http.Client) (*Slack, error) {
	if url == "" {
		return nil, errors.New("alert: Slack needs a webhook URL")
	}
	return &Slack{url: url, client: client}, nil
}

// slackEscape escapes the characters Slack's mrkdwn treats as control.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// SlackMessageOf lays n out within Slack's limits.
func SlackMessageOf(n Notification) SlackMessage {
	icon := map[Severity]string{SeverityCritical: ":rotating_light:", SeverityWarning: ":warning:", SeverityInfo: ":information_source:"}[n.Severity]
	if !n.Firing() {
		icon = ":white_check_mark:"
	}
	title := groupSummary(n, slackHeaderText)
	msg := SlackMessage{Text: truncate(icon+" "+groupSummary(n, slackText), slackText)}
	msg.Blocks = append(msg.Blocks, SlackBlock{Type: "header", Text: &SlackText{Type: "plain_text", Text: title}})
	total := len(title)
	shown := 0
	for _, e := range n.Events {
		if shown == slackEvents || len(msg.Blocks) >= slackMaxBlocks-2 {
			break
		}
		t := truncate(slackEvent(e), slackSection)
		if total+len(t) > slackTotal {
			break
		}
		total += len(t)
		msg.Blocks = append(msg.Blocks, SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: t}})
		shown++
	}
	ctx := fmt.Sprintf("%s · %s · key %s", n.Severity, n.Kind, n.Key)
	if rest := len(n.Events) - shown; rest > 0 {
		ctx = fmt.Sprintf("and %d more not shown · %s", rest, ctx)
	}
	msg.Blocks = append(msg.Blocks, SlackBlock{Type: "context", Elements: []SlackText{{Type: "mrkdwn", Text: slackEscape(ctx)}}})
	return msg
}

// slackEvent formats one event as mrkdwn.
func slackEvent(e Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%s*", slackEscape(e.Summary))
	f := e.Figures
	var facts []string
	if e.Incident != "" {
		if e.Link != "" {
			facts = append(facts, fmt.Sprintf("incident <%s|%s>", e.Link, slackEscape(e.Incident)))
		} else {
			facts = append(facts, "incident "+slackEscape(e.Incident))
		}
	}
	if f.Reason != "" {
		facts = append(facts, "reason "+slackEscape(f.Reason))
	}
	if f.WindowCount != 0 || f.Baseline != 0 {
		facts = append(facts, fmt.Sprintf("count %.1f per %s, baseline %.1f", f.WindowCount, f.Window, f.Baseline))
	}
	if f.MaxActions != 0 || f.Factor != 0 {
		facts = append(facts, fmt.Sprintf("thresholds max %.0f, factor %.1f", f.MaxActions, f.Factor))
	}
	if f.Held != 0 {
		facts = append(facts, fmt.Sprintf("held %d", f.Held))
	}
	if len(f.HeldScopes) > 0 {
		facts = append(facts, "holding only "+slackEscape(scopeList(f.HeldScopes)))
	}
	if f.OldestHeld != 0 {
		facts = append(facts, "oldest "+time.Duration(f.OldestHeld).Round(time.Second).String())
	}
	if f.Lag != 0 {
		facts = append(facts, fmt.Sprintf("lag %d", f.Lag))
	}
	if len(f.TopActions) > 0 {
		facts = append(facts, "actions "+slackEscape(counts(f.TopActions)))
	}
	if len(f.TopModels) > 0 {
		facts = append(facts, "models "+slackEscape(counts(f.TopModels)))
	}
	if len(facts) > 0 {
		b.WriteString("\n")
		b.WriteString(strings.Join(facts, " · "))
	}
	return b.String()
}

// counts formats a top list.
func counts(cs []Count) string {
	parts := make([]string, len(cs))
	for i, c := range cs {
		parts[i] = fmt.Sprintf("%s=%d", c.Value, c.Count)
	}
	return strings.Join(parts, ", ")
}

// Notify posts n.
func (s *Slack) Notify(ctx context.Context, n Notification) error {
	body, err := json.Marshal(SlackMessageOf(n))
	if err != nil {
		return err
	}
	return post(ctx, s.client, s.url, body, nil)
}
