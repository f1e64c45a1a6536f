package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/respond"
)

// Slack's Block Kit limits.
const (
	slackMaxSectionText = 3000 // section text
	slackMaxFieldText   = 2000 // each field
	slackMaxFields      = 10   // fields per section
	slackMaxHeader      = 150  // header text
	slackMaxBlocks      = 50   // blocks per message
	slackMaxEvents      = 20   // events shown with fields; the rest are counted
	slackMaxTextBlocks  = 3    // sections carrying the message text
)

// Slack posts one Block Kit message per digest to an incoming webhook:
// a header with the severity level and type, the facts as fields, the
// message text, and a button to the dashboard.
type Slack struct {
	name   string
	url    string
	client *http.Client
	scrub  scrubber
	pace   *pacer
	opts   Options
}

// NewSlack returns a Slack notifier. Messages are spaced at least
// MinInterval apart (default one second, Slack's rate for webhooks).
func NewSlack(c SlackConfig, opts Options) (*Slack, error) {
	if c.WebhookURL == "" {
		return nil, fmt.Errorf("notify: slack %q: no webhook_url (call Config.Resolve to read webhook_url_file)", c.Name)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("notify: slack %q: %w", c.Name, err)
	}
	min := c.MinInterval
	if min == 0 {
		min = time.Second
	}
	return &Slack{
		name: c.Name, url: string(c.WebhookURL),
		client: opts.httpClient(c.Timeout),
		scrub:  newScrubber(string(c.WebhookURL)),
		pace:   &pacer{min: min},
		opts:   opts,
	}, nil
}

// Name is the notifier's name from the config.
func (s *Slack) Name() string { return s.name }

// Notify posts the message. A 429 is retryable and its Retry-After is
// honoured: Notify returns an error RetryAfter can read, and later calls
// wait until then.
func (s *Slack) Notify(ctx context.Context, msg respond.Message) (bool, error) {
	log := s.opts.logger().With("notifier", s.name, "kind", "slack")
	body, err := json.Marshal(SlackPayload(msg, s.opts.Language))
	if err != nil {
		return false, fmt.Errorf("slack %s: cannot encode the message: %w", s.name, err)
	}
	if wait, err := s.pace.wait(ctx, s.opts.now); err != nil {
		e := &notifyError{msg: fmt.Sprintf("slack %s: rate limited for another %s: %v", s.name, wait.Round(time.Millisecond), err), retryAfter: wait, cause: err}
		log.Warn("notification delayed", "error", e.Error())
		return !errorsIsCanceled(err), e
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return false, s.scrub.fail("slack "+s.name+": cannot build the request", err)
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	resp, err := s.client.Do(req)
	if err != nil {
		retry := transient(err)
		e := s.scrub.fail("slack "+s.name+": post failed", err)
		log.Warn("notification failed", "error", e.Error(), "retry", retry)
		return retry, e
	}
	defer resp.Body.Close()
	snippet := readSnippet(resp.Body)
	if resp.StatusCode/100 == 2 {
		log.Info("notification sent", "events", len(msg.Events))
		return false, nil
	}
	e := &notifyError{msg: s.scrub.clean(fmt.Sprintf("slack %s: HTTP %d: %s", s.name, resp.StatusCode, snippet))}
	if resp.StatusCode == http.StatusTooManyRequests {
		ra := parseRetryAfter(resp.Header.Get("Retry-After"), s.opts.now())
		if ra == 0 {
			ra = s.pace.min
		}
		e.retryAfter = ra
		s.pace.backoff(s.opts.now().Add(ra))
	}
	retry := httpStatusRetryable(resp.StatusCode)
	log.Warn("notification failed", "error", e.Error(), "retry", retry)
	return retry, e
}

func errorsIsCanceled(err error) bool { return errors.Is(err, context.Canceled) }

// SlackText is a Block Kit text object.
type SlackText struct {
	Type  string `json:"type"` // plain_text or mrkdwn
	Text  string `json:"text"`
	Emoji bool   `json:"emoji,omitempty"`
}

// SlackElement is a button in an actions block.
type SlackElement struct {
	Type     string     `json:"type"`
	Text     *SlackText `json:"text,omitempty"`
	URL      string     `json:"url,omitempty"`
	ActionID string     `json:"action_id,omitempty"`
}

// SlackBlock is one Block Kit block (header, section, divider, context,
// actions).
type SlackBlock struct {
	Type     string      `json:"type"`
	Text     *SlackText  `json:"text,omitempty"`
	Fields   []SlackText `json:"fields,omitempty"`
	Elements []any       `json:"elements,omitempty"`
}

// SlackMessage is what an incoming webhook receives.
type SlackMessage struct {
	// Text is the fallback shown in notifications.
	Text   string       `json:"text"`
	Blocks []SlackBlock `json:"blocks"`
}

// SlackPayload builds the Block Kit message for msg.
func SlackPayload(msg respond.Message, lang string) SlackMessage {
	out := SlackMessage{Text: truncateRunes(oneLine(msg.Subject), slackMaxSectionText)}
	out.Blocks = append(out.Blocks, SlackBlock{Type: "header", Text: &SlackText{
		Type: "plain_text", Emoji: true, Text: truncateRunes(slackHeader(msg.Events, lang), slackMaxHeader),
	}})
	shown := 0
	for _, e := range msg.Events {
		if shown == slackMaxEvents {
			break
		}
		if b, ok := slackEvent(e, lang, len(msg.Events) > 1); ok {
			out.Blocks = append(out.Blocks, b)
			shown++
		}
	}
	if rest := len(msg.Events) - shown; rest > 0 {
		out.Blocks = append(out.Blocks, SlackBlock{Type: "context", Elements: []any{
			SlackText{Type: "mrkdwn", Text: fmt.Sprintf(word(lang, "more"), rest)},
		}})
	}
	if strings.TrimSpace(msg.Text) != "" {
		out.Blocks = append(out.Blocks, SlackBlock{Type: "divider"})
		for _, chunk := range splitText(mrkdwnEscape(msg.Text), slackMaxSectionText, slackMaxTextBlocks, word(lang, "cut")) {
			out.Blocks = append(out.Blocks, SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: chunk}})
		}
	}
	if msg.Link != "" && len(msg.Link) <= 3000 {
		out.Blocks = append(out.Blocks, SlackBlock{Type: "actions", Elements: []any{
			SlackElement{Type: "button", ActionID: "flowguard-dashboard", URL: msg.Link,
				Text: &SlackText{Type: "plain_text", Text: word(lang, "dashboard")}},
		}})
	}
	if len(out.Blocks) > slackMaxBlocks {
		out.Blocks = out.Blocks[:slackMaxBlocks]
	}
	return out
}

func levelEmoji(sev float64) string {
	switch finding.Level(sev) {
	case "High":
		return ":rotating_light:"
	case "Medium":
		return ":warning:"
	}
	return ":information_source:"
}

func slackHeader(evs []respond.Event, lang string) string {
	if len(evs) == 1 {
		e := evs[0]
		if e.Finding != nil {
			return fmt.Sprintf("%s %s: %s %s", levelEmoji(e.Finding.Severity), word(lang, "severity"),
				levelName(lang, e.Finding.Severity), e.Finding.Type)
		}
		if e.Alarm != nil {
			return fmt.Sprintf(":bell: %s %s: %s", word(lang, "alarm"), e.Alarm.Alarm, e.Alarm.To)
		}
	}
	if n := countKind(evs, true); n > 0 {
		top := maxSeverity(evs)
		return levelEmoji(top) + " " + fmt.Sprintf(word(lang, "findings"), n, levelName(lang, top))
	}
	return fmt.Sprintf(":bell: %s × %d", word(lang, "alarm"), len(evs))
}

// slackEvent is one section with the event's facts as fields.
func slackEvent(e respond.Event, lang string, digest bool) (SlackBlock, bool) {
	field := func(label, value string) SlackText {
		return SlackText{Type: "mrkdwn", Text: truncateRunes("*"+label+"*\n"+mrkdwnEscape(value), slackMaxFieldText)}
	}
	switch {
	case e.Finding != nil:
		f := e.Finding
		title := f.Title
		if digest {
			title = fmt.Sprintf("%s %s · %s — %s", levelEmoji(f.Severity), levelName(lang, f.Severity), f.Type, f.Title)
		}
		if e.Updated {
			title += word(lang, "updated")
		}
		target := word(lang, "many")
		if f.Target.IP.IsValid() {
			target = f.Target.IP.String()
		}
		if f.Target.InstanceID != "" {
			target += " (" + f.Target.InstanceID + ")"
		}
		actor := f.Actor.IP.String()
		if f.Actor.InstanceID != "" {
			actor += " (" + f.Actor.InstanceID + ")"
		}
		if f.Actor.Direction != "" {
			actor += " · " + string(f.Actor.Direction)
		}
		fields := []SlackText{
			field(word(lang, "severity"), fmt.Sprintf("%s (%.1f)", levelName(lang, f.Severity), f.Severity)),
			field(word(lang, "type"), f.Type),
			field(word(lang, "actor"), actor),
			field(word(lang, "target"), target),
		}
		if len(f.Target.Ports) > 0 {
			fields = append(fields, field(word(lang, "ports"), formatPorts(f.Target.Ports)))
		}
		fields = append(fields,
			field(word(lang, "count"), groupDigits(f.Count)),
			field(word(lang, "first"), f.FirstSeen.UTC().Format(time.RFC3339)),
			field(word(lang, "last"), f.LastSeen.UTC().Format(time.RFC3339)),
		)
		return SlackBlock{Type: "section", Text: &SlackText{Type: "mrkdwn", Text: "*" + truncateRunes(mrkdwnEscape(title), slackMaxSectionText-2) + "*"},
			Fields: fields[:min(len(fields), slackMaxFields)]}, true
	case e.Alarm != nil:
		a := e.Alarm
		return SlackBlock{Type: "section",
			Text: &SlackText{Type: "mrkdwn", Text: truncateRunes(fmt.Sprintf("*%s* %s → %s\n%s", mrkdwnEscape(a.Alarm), a.From, a.To, mrkdwnEscape(a.Reason)), slackMaxSectionText)},
			Fields: []SlackText{
				field(word(lang, "state"), fmt.Sprintf("%s → %s", a.From, a.To)),
				field(word(lang, "time"), a.Time.UTC().Format(time.RFC3339)),
			}}, true
	}
	return SlackBlock{}, false
}

// mrkdwnEscape escapes the three characters Slack's mrkdwn treats as
// control characters.
func mrkdwnEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// splitText cuts text into at most maxChunks pieces of at most size
// characters, at line breaks where it can; when the text does not fit,
// the last piece ends with note.
func splitText(text string, size, maxChunks int, note string) []string {
	var out []string
	for text != "" {
		if len(out) == maxChunks-1 && utf8.RuneCountInString(text) > size {
			limit := size - utf8.RuneCountInString(note)
			out = append(out, cutAtLine(text, limit)+note)
			break
		}
		chunk := cutAtLine(text, size)
		out = append(out, chunk)
		text = strings.TrimLeft(text[len(chunk):], "\n")
	}
	return out
}

// cutAtLine returns the longest prefix of s with at most n runes, ending
// at a line break if there is one in its second half.
func cutAtLine(s string, n int) string {
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	end, count := 0, 0
	for i := range s {
		if count == n {
			end = i
			break
		}
		count++
	}
	if nl := strings.LastIndexByte(s[:end], '\n'); nl > end/2 {
		return s[:nl]
	}
	return s[:end]
}
