// Package dynamo is flowguard's store in one DynamoDB table, for the
// Lambda function (flowguard lambda), whose invocations share no disk and
// may run at the same time. It implements store.Interface and
// store.Responses (respond.go), and passes the
// same contract tests (internal/store/storetest) as the SQLite store.
//
// # Single-table design
//
// Every item has a partition key pk and a sort key sk (both strings), and
// items that may be forgotten have a ttl attribute (Unix seconds; the
// table's TimeToLive attribute):
//
//	pk              sk            item
//	F#<finding id>  #             the finding as it stands (body, ver)
//	F#<finding id>  C#<stream>    a stream's contribution (body, sver)
//	S#<stream>      #             the version of the stream's last commit
//	P#<source>      O#<object>    a source position (token, name)
//	K#<source>      #             a checkpoint (position)
//	A               <alarm>       an alarm's state (cver: the clock's version that wrote it)
//	A#clock         #             the alarm clock (body, ver)
//	W#<window>      #             a window's version (ttl)
//	W#<window>      I#<ref>       one input of a window (data, ttl)
//	N#audit         #             the audit sequence counter
//	U               <seq, 20 digits> an audit entry
//
// # Concurrency
//
// Where SQLite takes a write lock, this store uses conditional writes: a
// stream's version only grows (ver < :v), a contribution is replaced only
// by a newer version of its stream, and a finding's row is recomputed from
// its contributions (read with strong consistency after the row) and
// written only if its version did not change since it was read, else read
// again. A commit is not one transaction: a failure halfway leaves some
// contributions written and their rows not yet recomputed; committing the
// same state again (the Lambda's retry) completes it.
package dynamo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/flowguard/flowguard/internal/alarm"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// Store is the DynamoDB store. Its methods are safe for concurrent use,
// by any number of goroutines and processes.
type Store struct {
	c     *dynamodb.Client
	table string
	now   func() time.Time
}

var _ store.Interface = (*Store)(nil)

// New returns the store kept in table, reached through c.
func New(c *dynamodb.Client, table string) *Store {
	return &Store{c: c, table: table, now: time.Now}
}

// CreateTable creates the table (pk and sk string keys, on-demand
// capacity) and turns on its TTL attribute, for tests and for users who
// do not create it with Terraform or CloudFormation. A table that exists
// is left as it is.
func CreateTable(ctx context.Context, c *dynamodb.Client, table string) error {
	_, err := c.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName:   aws.String(table),
		BillingMode: types.BillingModePayPerRequest,
		AttributeDefinitions: []types.AttributeDefinition{
			{AttributeName: aws.String("pk"), AttributeType: types.ScalarAttributeTypeS},
			{AttributeName: aws.String("sk"), AttributeType: types.ScalarAttributeTypeS},
		},
		KeySchema: []types.KeySchemaElement{
			{AttributeName: aws.String("pk"), KeyType: types.KeyTypeHash},
			{AttributeName: aws.String("sk"), KeyType: types.KeyTypeRange},
		},
	})
	var inUse *types.ResourceInUseException
	if err != nil && !errors.As(err, &inUse) {
		return fmt.Errorf("cannot create DynamoDB table %s: %w", table, err)
	}
	w := dynamodb.NewTableExistsWaiter(c, func(o *dynamodb.TableExistsWaiterOptions) { o.MinDelay = 50 * time.Millisecond })
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(table)}, 2*time.Minute); err != nil {
		return fmt.Errorf("DynamoDB table %s did not become active: %w", table, err)
	}
	return nil
}

// Attribute helpers.
func s(v string) types.AttributeValue { return &types.AttributeValueMemberS{Value: v} }
func n(v int64) types.AttributeValue {
	return &types.AttributeValueMemberN{Value: strconv.FormatInt(v, 10)}
}

func key(pk, sk string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": s(pk), "sk": s(sk)}
}

func str(item map[string]types.AttributeValue, name string) string {
	if v, ok := item[name].(*types.AttributeValueMemberS); ok {
		return v.Value
	}
	return ""
}

func num(item map[string]types.AttributeValue, name string) int64 {
	if v, ok := item[name].(*types.AttributeValueMemberN); ok {
		i, _ := strconv.ParseInt(v.Value, 10, 64)
		return i
	}
	return 0
}

func boolean(item map[string]types.AttributeValue, name string) bool {
	v, ok := item[name].(*types.AttributeValueMemberBOOL)
	return ok && v.Value
}

func isConditionFailed(err error) bool {
	var cf *types.ConditionalCheckFailedException
	return errors.As(err, &cf)
}

// wrap names the table in an error.
func (st *Store) wrap(err error, format string, args ...any) error {
	return fmt.Errorf("DynamoDB table %s: "+format+": %w", append([]any{st.table}, append(args, err)...)...)
}

// query returns every item of partition pk whose sort key starts with
// prefix, read with strong consistency, in sort key order.
func (st *Store) query(ctx context.Context, pk, prefix string) ([]map[string]types.AttributeValue, error) {
	in := &dynamodb.QueryInput{
		TableName:              aws.String(st.table),
		ConsistentRead:         aws.Bool(true),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :p)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": s(pk), ":p": s(prefix),
		},
	}
	if prefix == "" {
		in.KeyConditionExpression = aws.String("pk = :pk")
		delete(in.ExpressionAttributeValues, ":p")
	}
	var out []map[string]types.AttributeValue
	p := dynamodb.NewQueryPaginator(st.c, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		out = append(out, page.Items...)
	}
	return out, nil
}

func (st *Store) get(ctx context.Context, pk, sk string) (map[string]types.AttributeValue, error) {
	out, err := st.c.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(st.table), Key: key(pk, sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, err
	}
	return out.Item, nil
}

func (st *Store) put(ctx context.Context, item map[string]types.AttributeValue) error {
	_, err := st.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: item})
	return err
}

// GetFinding implements store.FindingReader.
func (st *Store) GetFinding(ctx context.Context, id string) (finding.Finding, error) {
	f, _, ok, err := st.getFinding(ctx, id)
	if err != nil {
		return finding.Finding{}, err
	}
	if !ok {
		return finding.Finding{}, &store.NotFoundError{Kind: "finding", ID: id}
	}
	return f, nil
}

// getFinding returns a finding's row and its version.
func (st *Store) getFinding(ctx context.Context, id string) (finding.Finding, int64, bool, error) {
	item, err := st.get(ctx, "F#"+id, "#")
	if err != nil {
		return finding.Finding{}, 0, false, st.wrap(err, "cannot read finding %s", id)
	}
	if item == nil {
		return finding.Finding{}, 0, false, nil
	}
	f, err := decodeRow(id, item)
	return f, num(item, "ver"), err == nil, err
}

func decodeRow(id string, item map[string]types.AttributeValue) (finding.Finding, error) {
	var f finding.Finding
	if err := json.Unmarshal([]byte(str(item, "body")), &f); err != nil {
		return f, fmt.Errorf("finding %s is damaged in the store: %w", id, err)
	}
	f.Archived, f.Feedback = boolean(item, "archived"), str(item, "feedback")
	return f, nil
}

// ListFindings implements store.FindingReader. It scans the table: the
// findings of one account's flow logs are thousands, not millions.
func (st *Store) ListFindings(ctx context.Context, fl finding.Filter) ([]finding.Finding, error) {
	if err := fl.Validate(); err != nil {
		return nil, err
	}
	p := dynamodb.NewScanPaginator(st.c, &dynamodb.ScanInput{
		TableName:                 aws.String(st.table),
		ConsistentRead:            aws.Bool(true),
		FilterExpression:          aws.String("sk = :row AND begins_with(pk, :f)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":row": s("#"), ":f": s("F#")},
	})
	var out []finding.Finding
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, st.wrap(err, "cannot list findings")
		}
		for _, item := range page.Items {
			id := strings.TrimPrefix(str(item, "pk"), "F#")
			f, err := decodeRow(id, item)
			if err != nil {
				return nil, err
			}
			if fl.Match(&f) {
				out = append(out, f)
			}
		}
	}
	slices.SortFunc(out, func(a, b finding.Finding) int {
		if c := b.LastSeen.Compare(a.LastSeen); c != 0 {
			return c
		}
		if a.Severity != b.Severity {
			if a.Severity > b.Severity {
				return -1
			}
			return 1
		}
		return strings.Compare(a.ID, b.ID)
	})
	if fl.Limit > 0 && len(out) > fl.Limit {
		out = out[:fl.Limit]
	}
	return out, nil
}

// CommitStream implements store.Detections; see the package comment for
// how it stands in for SQLite's transaction. Inputs (superseding other
// streams) and Respond (the response queue) are the SQLite store's only.
func (st *Store) CommitStream(ctx context.Context, c store.StreamCommit) (store.CommitResult, error) {
	var res store.CommitResult
	if c.Stream == "" || c.Stream == "legacy" {
		return res, fmt.Errorf("bad stream name %q", c.Stream)
	}
	if c.Inputs != nil || c.Respond {
		return res, errors.New("the DynamoDB store does not supersede streams by their inputs nor queue responses")
	}
	for i := range c.Findings {
		if c.Findings[i].ID == "" || c.Findings[i].Type == "" {
			return res, fmt.Errorf("finding %d (%s, actor %s) has no id or type", i+1, c.Findings[i].Type, c.Findings[i].Actor.IP)
		}
	}
	var vanished []string
	if c.Version > 0 {
		// The stream's item holds the ids of the findings its last
		// version found: those this version does not are dropped.
		ids := make([]string, 0, len(c.Findings))
		for i := range c.Findings {
			ids = append(ids, c.Findings[i].ID)
		}
		out, err := st.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 aws.String(st.table),
			Key:                       key("S#"+c.Stream, "#"),
			UpdateExpression:          aws.String("SET ver = :v, ids = :ids"),
			ConditionExpression:       aws.String("attribute_not_exists(ver) OR ver < :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(c.Version), ":ids": s(strings.Join(ids, " "))},
			ReturnValues:              types.ReturnValueAllOld,
		})
		if isConditionFailed(err) {
			res.Stale = true
			return res, nil
		}
		if err != nil {
			return res, st.wrap(err, "cannot record the version of stream %s", c.Stream)
		}
		for _, id := range strings.Fields(str(out.Attributes, "ids")) {
			if !slices.Contains(ids, id) {
				vanished = append(vanished, id)
			}
		}
	}
	now := st.now()
	var ids []string
	for _, id := range vanished {
		// A tombstone, not a delete: an older version's put that comes
		// later fails on it (sver < :v).
		_, err := st.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: map[string]types.AttributeValue{
			"pk": s("F#" + id), "sk": s("C#" + c.Stream), "gone": &types.AttributeValueMemberBOOL{Value: true},
			"sver": n(c.Version), "updated": n(now.UnixNano())},
			ConditionExpression:       aws.String("attribute_not_exists(sver) OR sver < :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(c.Version)},
		})
		if err != nil && !isConditionFailed(err) {
			return res, st.wrap(err, "cannot drop finding %s from stream %s", id, c.Stream)
		}
		ids = append(ids, id)
	}
	for i := range c.Findings {
		f := &c.Findings[i]
		body, err := json.Marshal(f)
		if err != nil {
			return res, fmt.Errorf("finding %s: cannot encode it: %w", f.ID, err)
		}
		in := &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: map[string]types.AttributeValue{
			"pk": s("F#" + f.ID), "sk": s("C#" + c.Stream), "body": s(string(body)), "count": n(f.Count),
			"updated": n(now.UnixNano()), "sver": n(c.Version),
		}}
		if c.Version > 0 {
			in.ConditionExpression = aws.String("attribute_not_exists(sver) OR sver < :v")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": n(c.Version)}
		}
		if _, err := st.c.PutItem(ctx, in); err != nil {
			if isConditionFailed(err) {
				continue // a newer version of the stream wrote it
			}
			return res, st.wrap(err, "cannot record finding %s", f.ID)
		}
		ids = append(ids, f.ID)
	}
	slices.Sort(ids)
	for _, id := range slices.Compact(ids) {
		f, created, changed, removed, err := st.refold(ctx, id, now)
		if err != nil {
			return res, err
		}
		switch {
		case removed:
			res.Removed++
		case created:
			res.Created++
			res.New = append(res.New, id)
			res.Changed = append(res.Changed, f)
		case changed:
			res.Updated++
			res.Changed = append(res.Changed, f)
		default:
			res.Unchanged++
		}
	}
	for _, p := range c.Positions {
		if p.Source == "" || p.Object == "" {
			return res, fmt.Errorf("position without a source or object: %+v", p)
		}
		if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("P#" + p.Source), "sk": s("O#" + p.Object),
			"token": s(p.Token), "name": s(p.Name), "updated": n(now.UnixNano())}); err != nil {
			return res, st.wrap(err, "cannot save the position of %s in %s", p.Source, p.Object)
		}
	}
	for _, a := range c.Alarms {
		if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("A"), "sk": s(a.Name),
			"state": s(string(a.State)), "since": n(unixNanos(a.Since)), "reason": s(a.Reason)}); err != nil {
			return res, st.wrap(err, "cannot save the state of alarm %q", a.Name)
		}
	}
	return res, nil
}

// maxRefold bounds the attempts to write a finding's row while other
// processes write it too.
const maxRefold = 50

// refold recomputes a finding's row from its contributions: it reads the
// row (and its version) first, then the contributions, and writes the
// merge only if the row's version is still the one read. A row whose
// contributions are all dropped (tombstones) is deleted.
func (st *Store) refold(ctx context.Context, id string, now time.Time) (f finding.Finding, created, changed, removed bool, err error) {
	for attempt := 0; attempt < maxRefold; attempt++ {
		old, ver, found, err := st.getFinding(ctx, id)
		if err != nil {
			return f, false, false, false, err
		}
		items, err := st.query(ctx, "F#"+id, "C#")
		if err != nil {
			return f, false, false, false, st.wrap(err, "cannot read the contributions to finding %s", id)
		}
		live := 0
		for _, item := range items {
			if boolean(item, "gone") {
				continue
			}
			var c finding.Finding
			if err := json.Unmarshal([]byte(str(item, "body")), &c); err != nil {
				return f, false, false, false, fmt.Errorf("a contribution to finding %s is damaged in the store: %w", id, err)
			}
			if live == 0 {
				f = c
			} else {
				f = finding.Merge(f, c)
			}
			live++
		}
		if live == 0 {
			if len(items) == 0 || !found {
				return old, false, false, false, nil
			}
			_, err := st.c.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(st.table), Key: key("F#"+id, "#"),
				ConditionExpression:       aws.String("ver = :v"),
				ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(ver)}})
			if err == nil {
				return old, false, false, true, nil
			}
			if !isConditionFailed(err) {
				return f, false, false, false, st.wrap(err, "cannot delete finding %s", id)
			}
			continue
		}
		f.Archived, f.Feedback = false, ""
		if found {
			f.Archived, f.Feedback = old.Archived, old.Feedback
			if f.Count == old.Count && f.FirstSeen.Equal(old.FirstSeen) && f.LastSeen.Equal(old.LastSeen) && f.Severity == old.Severity {
				return old, false, false, false, nil
			}
		}
		body, err := json.Marshal(withoutState(f))
		if err != nil {
			return f, false, false, false, fmt.Errorf("finding %s: cannot encode it: %w", id, err)
		}
		item := map[string]types.AttributeValue{"pk": s("F#" + id), "sk": s("#"), "body": s(string(body)),
			"archived": &types.AttributeValueMemberBOOL{Value: f.Archived}, "feedback": s(f.Feedback),
			"type": s(f.Type), "last_seen": n(f.LastSeen.UnixNano()), "ver": n(ver + 1), "updated": n(now.UnixNano())}
		in := &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: item}
		if found {
			in.ConditionExpression = aws.String("ver = :v")
			in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": n(ver)}
		} else {
			in.ConditionExpression = aws.String("attribute_not_exists(pk)")
		}
		_, err = st.c.PutItem(ctx, in)
		if err == nil {
			return f, !found, true, false, nil
		}
		if !isConditionFailed(err) {
			return f, false, false, false, st.wrap(err, "cannot record finding %s", id)
		}
		// Another process wrote the row since: read it again.
		select {
		case <-ctx.Done():
			return f, false, false, false, ctx.Err()
		case <-time.After(time.Duration(rand.IntN(20)+1) * time.Millisecond):
		}
	}
	return f, false, false, false, fmt.Errorf("DynamoDB table %s: finding %s kept changing under %d attempts to record it", st.table, id, maxRefold)
}

// withoutState is the finding's body: archived and feedback are the row's
// own attributes.
func withoutState(f finding.Finding) finding.Finding {
	f.Archived, f.Feedback = false, ""
	return f
}

// LoadPositions implements store.Detections.
func (st *Store) LoadPositions(ctx context.Context, source string) ([]store.Position, error) {
	items, err := st.query(ctx, "P#"+source, "O#")
	if err != nil {
		return nil, st.wrap(err, "cannot read the positions of %s", source)
	}
	var out []store.Position
	for _, it := range items {
		out = append(out, store.Position{Source: source, Object: strings.TrimPrefix(str(it, "sk"), "O#"), Token: str(it, "token"), Name: str(it, "name")})
	}
	return out, nil
}

// LoadAlarmStates implements store.Detections.
func (st *Store) LoadAlarmStates(ctx context.Context) (map[string]store.AlarmState, error) {
	items, err := st.query(ctx, "A", "")
	if err != nil {
		return nil, st.wrap(err, "cannot read alarm states")
	}
	out := map[string]store.AlarmState{}
	for _, it := range items {
		a := store.AlarmState{Name: str(it, "sk"), State: alarm.State(str(it, "state")), Reason: str(it, "reason")}
		if ns := num(it, "since"); ns != 0 {
			a.Since = time.Unix(0, ns).UTC()
		}
		out[a.Name] = a
	}
	return out, nil
}

// SaveCheckpoint implements store.Detections.
func (st *Store) SaveCheckpoint(ctx context.Context, source, position string) error {
	if source == "" {
		return errors.New("checkpoint without a source")
	}
	if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("K#" + source), "sk": s("#"), "position": s(position),
		"updated": n(st.now().UnixNano())}); err != nil {
		return st.wrap(err, "cannot save the checkpoint of %s", source)
	}
	return nil
}

// LoadCheckpoint implements store.Detections.
func (st *Store) LoadCheckpoint(ctx context.Context, source string) (string, bool, error) {
	item, err := st.get(ctx, "K#"+source, "#")
	if err != nil {
		return "", false, st.wrap(err, "cannot read the checkpoint of %s", source)
	}
	if item == nil {
		return "", false, nil
	}
	return str(item, "position"), true, nil
}

// AddWindowInput implements store.Detections: the input's item is written
// before the window's version is counted up, and the inputs are read
// after, so a window read at a higher version holds every input one read
// at a lower version held.
func (st *Store) AddWindowInput(ctx context.Context, window string, in store.WindowInput) (store.Window, error) {
	w := store.Window{Name: window}
	if window == "" || in.Ref == "" {
		return w, errors.New("window input without a window or a ref")
	}
	item := map[string]types.AttributeValue{"pk": s("W#" + window), "sk": s("I#" + in.Ref), "ref": s(in.Ref)}
	if len(in.Data) > 0 {
		item["data"] = &types.AttributeValueMemberB{Value: in.Data}
	}
	upd := &dynamodb.UpdateItemInput{
		TableName:                 aws.String(st.table),
		Key:                       key("W#"+window, "#"),
		UpdateExpression:          aws.String("ADD ver :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	}
	if !in.Expires.IsZero() {
		item["ttl"] = n(in.Expires.Unix())
		upd.UpdateExpression = aws.String("ADD ver :one SET #ttl = :ttl")
		upd.ExpressionAttributeNames = map[string]string{"#ttl": "ttl"}
		upd.ExpressionAttributeValues[":ttl"] = n(in.Expires.Unix())
	}
	if err := st.put(ctx, item); err != nil {
		return w, st.wrap(err, "cannot add %s to window %s", in.Ref, window)
	}
	out, err := st.c.UpdateItem(ctx, upd)
	if err != nil {
		return w, st.wrap(err, "cannot count window %s up", window)
	}
	w.Version = num(out.Attributes, "ver")
	w.Inputs, err = st.windowInputs(ctx, window)
	return w, err
}

// LoadWindow implements store.AlarmClocks.
func (st *Store) LoadWindow(ctx context.Context, window string) (store.Window, error) {
	w := store.Window{Name: window}
	item, err := st.get(ctx, "W#"+window, "#")
	if err != nil {
		return w, st.wrap(err, "cannot read window %s", window)
	}
	if item == nil {
		return w, nil
	}
	w.Version = num(item, "ver")
	w.Inputs, err = st.windowInputs(ctx, window)
	return w, err
}

// windowInputs reads a window's inputs, sorted by ref.
func (st *Store) windowInputs(ctx context.Context, window string) ([]store.WindowInput, error) {
	items, err := st.query(ctx, "W#"+window, "I#")
	if err != nil {
		return nil, st.wrap(err, "cannot read window %s", window)
	}
	now := st.now().Unix()
	var out []store.WindowInput
	for _, it := range items {
		// DynamoDB deletes expired items some time after they expire:
		// until then they are still read, and skipped here.
		if ttl := num(it, "ttl"); ttl != 0 && ttl < now {
			continue
		}
		wi := store.WindowInput{Ref: str(it, "ref")}
		if b, ok := it["data"].(*types.AttributeValueMemberB); ok {
			wi.Data = b.Value
		}
		if ttl := num(it, "ttl"); ttl != 0 {
			wi.Expires = time.Unix(ttl, 0).UTC()
		}
		out = append(out, wi)
	}
	return out, nil
}

// AppendAudit implements store.Auditor: the sequence number comes from a
// counter item (an atomic ADD), the entry is its own item.
func (st *Store) AppendAudit(ctx context.Context, e store.AuditEntry) (int64, error) {
	if e.Action == "" {
		return 0, errors.New("audit entry without an action")
	}
	if e.Time.IsZero() {
		e.Time = st.now()
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	if !json.Valid(e.Detail) {
		return 0, fmt.Errorf("audit entry %s: detail is not JSON", e.Action)
	}
	out, err := st.c.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 aws.String(st.table),
		Key:                       key("N#audit", "#"),
		UpdateExpression:          aws.String("ADD seq :one"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":one": n(1)},
		ReturnValues:              types.ReturnValueUpdatedNew,
	})
	if err != nil {
		return 0, st.wrap(err, "cannot number an audit entry")
	}
	seq := num(out.Attributes, "seq")
	if err := st.put(ctx, map[string]types.AttributeValue{"pk": s("U"), "sk": s(fmt.Sprintf("%020d", seq)),
		"at": n(e.Time.UnixNano()), "action": s(e.Action), "subject": s(e.Subject), "finding": s(e.FindingID),
		"detail": s(string(e.Detail))}); err != nil {
		return 0, st.wrap(err, "cannot record an audit entry")
	}
	return seq, nil
}

// ListAudit implements store.Auditor.
func (st *Store) ListAudit(ctx context.Context, fl store.AuditFilter) ([]store.AuditEntry, error) {
	items, err := st.query(ctx, "U", "")
	if err != nil {
		return nil, st.wrap(err, "cannot read the audit trail")
	}
	var out []store.AuditEntry
	for _, it := range items {
		e := store.AuditEntry{Action: str(it, "action"), Subject: str(it, "subject"), FindingID: str(it, "finding"),
			Time: time.Unix(0, num(it, "at")).UTC(), Detail: json.RawMessage(str(it, "detail"))}
		e.Seq, _ = strconv.ParseInt(str(it, "sk"), 10, 64)
		if (!fl.Since.IsZero() && e.Time.Before(fl.Since)) || (fl.FindingID != "" && e.FindingID != fl.FindingID) || (fl.Action != "" && e.Action != fl.Action) {
			continue
		}
		out = append(out, e)
	}
	if fl.Limit > 0 && len(out) > fl.Limit {
		out = out[len(out)-fl.Limit:]
	}
	return out, nil
}
