package trail

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
)

// FuzzQueryCloudTrail: whatever a CloudTrail input holds, a query over it
// returns a table or skips input; it never fails or panics.
func FuzzQueryCloudTrail(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("..", "cloudtrail", "testdata", "*.json"))
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte(`{"Records":[{"eventName":"X","eventTime":"2026-11-22T10:00:00Z","":{"":1},"a":[null,[1,{"b":true}]],"a.1.1.b":"dup"}]}`))
	progs := make([]*query.Program, 0, 3)
	for _, q := range []string{
		`stats count(*) by eventName, userIdentity.type`,
		`fields @timestamp, @message, requestParameters.groupId | sort @timestamp desc | limit 5`,
		`filter ispresent(errorCode) or a.1.1.b like /t/ | stats count() by bin(1h)`,
	} {
		p, err := query.Compile(q, query.Options{})
		if err != nil {
			f.Fatal(err)
		}
		progs = append(progs, p)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in := flowlog.Input{Name: "fuzz.json", Size: int64(len(data)), Open: func(context.Context) (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}}
		for _, p := range progs {
			if _, err := p.RunRecords(context.Background(), &Records{Inputs: []flowlog.Input{in}, Errors: &flowlog.Skipped{}}); err != nil {
				t.Fatalf("%v", err)
			}
		}
	})
}
