package dynamo

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/flowguard/flowguard/internal/store"
)

// LoadAlarmClock implements store.AlarmClocks.
func (st *Store) LoadAlarmClock(ctx context.Context) (store.AlarmClock, error) {
	item, err := st.get(ctx, "A#clock", "#")
	if err != nil {
		return store.AlarmClock{}, st.wrap(err, "cannot read the alarm clock")
	}
	if item == nil {
		return store.AlarmClock{}, nil
	}
	var c store.AlarmClock
	if err := json.Unmarshal([]byte(str(item, "body")), &c); err != nil {
		return store.AlarmClock{}, fmt.Errorf("DynamoDB table %s: the alarm clock is damaged: %w", st.table, err)
	}
	c.Version = num(item, "ver")
	return c, nil
}

// SwapAlarmClock implements store.AlarmClocks: the clock's item is written
// on the condition that its version is still the one loaded; then each
// alarm's state item, on the condition that no later clock version wrote
// it (cver), so that two processes saving one after the other leave the
// later one's states whatever order their writes land in.
func (st *Store) SwapAlarmClock(ctx context.Context, c store.AlarmClock) (store.AlarmClock, error) {
	if err := store.CheckAlarmClock(c); err != nil {
		return c, err
	}
	old := c.Version
	c.Version++
	body, err := json.Marshal(c)
	if err != nil {
		return c, fmt.Errorf("cannot encode the alarm clock: %w", err)
	}
	in := &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: map[string]types.AttributeValue{
		"pk": s("A#clock"), "sk": s("#"), "body": s(string(body)), "ver": n(c.Version), "updated": n(st.now().UnixNano())}}
	if old == 0 {
		in.ConditionExpression = aws.String("attribute_not_exists(pk)")
	} else {
		in.ConditionExpression = aws.String("ver = :v")
		in.ExpressionAttributeValues = map[string]types.AttributeValue{":v": n(old)}
	}
	if _, err := st.c.PutItem(ctx, in); err != nil {
		c.Version = old
		if isConditionFailed(err) {
			return c, store.ErrClockMoved
		}
		return c, st.wrap(err, "cannot save the alarm clock")
	}
	for _, a := range c.States {
		_, err := st.c.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(st.table), Item: map[string]types.AttributeValue{
			"pk": s("A"), "sk": s(a.Name), "state": s(string(a.State)), "since": n(unixNanos(a.Since)), "reason": s(a.Reason),
			"cver": n(c.Version)},
			ConditionExpression:       aws.String("attribute_not_exists(cver) OR cver < :v"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":v": n(c.Version)},
		})
		if err != nil && !isConditionFailed(err) {
			return c, st.wrap(err, "cannot save the state of alarm %q", a.Name)
		}
	}
	return c, nil
}

// unixNanos is t in Unix nanoseconds, 0 for the zero time.
func unixNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}
