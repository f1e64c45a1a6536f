package trail

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/query"
)

// ctRecord is one generated CloudTrail record, kept as the test's own
// truth: the expected answers are computed from these, not from JSON.
type ctRecord struct {
	time                     time.Time
	source, name, region     string
	userType, arn, account   string
	userName                 string // userIdentity.userName
	recipient, agent         string
	errCode, errMsg          string
	tls, cipher              string // "" when the record has no tlsDetails
	newUser, newUserARN      string // CreateUser's requestParameters.userName, responseElements.user.arn
	consoleLogin, sourceAddr string
}

func (r *ctRecord) json() map[string]any {
	ui := map[string]any{"type": r.userType, "arn": r.arn, "accountId": r.account, "principalId": "AIDA" + r.userName}
	if r.userName != "" {
		ui["userName"] = r.userName
	}
	m := map[string]any{
		"eventVersion": "1.08", "userIdentity": ui,
		"eventTime": r.time.Format(time.RFC3339), "eventSource": r.source, "eventName": r.name,
		"awsRegion": r.region, "sourceIPAddress": r.sourceAddr, "userAgent": r.agent,
		"requestParameters": nil, "responseElements": nil, "eventType": "AwsApiCall",
		"recipientAccountId": r.recipient, "eventID": fmt.Sprintf("%x", rand.Uint64()), "readOnly": false,
	}
	if r.errCode != "" {
		m["errorCode"], m["errorMessage"] = r.errCode, r.errMsg
	}
	if r.tls != "" {
		m["tlsDetails"] = map[string]any{"tlsVersion": r.tls, "cipherSuite": r.cipher, "clientProvidedHostHeader": r.source}
	}
	if r.name == "CreateUser" {
		m["requestParameters"] = map[string]any{"userName": r.newUser}
		if r.errCode == "" {
			m["responseElements"] = map[string]any{"user": map[string]any{"userName": r.newUser, "arn": r.newUserARN, "createDate": "Mar 24, 2014 9:56:12 PM"}}
		}
	}
	if r.name == "ConsoleLogin" {
		m["eventType"] = "AwsConsoleSignIn"
		m["responseElements"] = map[string]any{"ConsoleLogin": r.consoleLogin}
		m["additionalEventData"] = map[string]any{"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com/"}
	}
	return m
}

// genTrail writes n random records as CloudTrail delivers them (gzip JSON,
// {"Records": […]}), in files of at most 500 records.
func genTrail(t testing.TB, n int, seed uint64) ([]ctRecord, []flowlog.Input) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	pick := func(xs ...string) string { return xs[rng.IntN(len(xs))] }
	dir := t.TempDir()
	var recs []ctRecord
	t0 := time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)
	for i := range n {
		r := ctRecord{time: t0.Add(time.Duration(i) * 7 * time.Second), account: "111122223333", recipient: pick("111122223333", "444455556666")}
		r.region = pick("us-east-1", "us-east-2", "eu-west-1")
		r.agent = pick("aws-cli/2.15.0 Python/3.11", "console.amazonaws.com", "Boto3/1.34.0")
		r.sourceAddr = pick("198.51.100.7", "203.0.113.9", "192.0.2.44")
		r.userType = pick("IAMUser", "AssumedRole", "Root")
		r.userName = pick("alice", "bob", "")
		r.arn = "arn:aws:iam::111122223333:user/" + r.userName
		switch r.source = pick("ec2.amazonaws.com", "iam.amazonaws.com", "cloudtrail.amazonaws.com", "signin.amazonaws.com"); r.source {
		case "ec2.amazonaws.com":
			r.name = pick("StartInstances", "StopInstances", "DescribeInstances")
		case "iam.amazonaws.com":
			r.name = pick("CreateUser", "ListUsers")
			r.newUser = pick("carol", "dave", "erin")
			r.newUserARN = "arn:aws:iam::111122223333:user/" + r.newUser
		case "cloudtrail.amazonaws.com":
			r.name = pick("UpdateTrail", "DescribeTrails")
		default:
			r.name = "ConsoleLogin"
			r.consoleLogin = pick("Success", "Failure")
		}
		if rng.IntN(4) == 0 {
			r.errCode = pick("AccessDenied", "ThrottlingException", "InvalidParameterValue")
			r.errMsg = pick("User is not authorized", "Rate exceeded")
		}
		if rng.IntN(3) > 0 {
			r.tls = pick("TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3")
			r.cipher = pick("ECDHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_GCM_SHA256")
		}
		recs = append(recs, r)
	}
	var inputs []flowlog.Input
	for f := 0; f*500 < n; f++ {
		var docs []map[string]any
		for i := f * 500; i < min(n, (f+1)*500); i++ {
			docs = append(docs, recs[i].json())
		}
		data, err := json.Marshal(map[string]any{"Records": docs})
		if err != nil {
			t.Fatal(err)
		}
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		zw.Write(data)
		zw.Close()
		path := filepath.Join(dir, fmt.Sprintf("111122223333_CloudTrail_us-east-1_20261122T10%02dZ_x.json.gz", f))
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		inputs = append(inputs, flowlog.Input{Name: path, Size: -1, Open: func(context.Context) (io.ReadCloser, error) { return os.Open(path) }})
	}
	return recs, inputs
}

// rowsOf runs a query over CloudTrail inputs and returns its rows as text,
// cells joined by tabs.
func rowsOf(t *testing.T, src string, inputs []flowlog.Input) []string {
	t.Helper()
	prog, err := query.Compile(src, query.Options{})
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	skipped := &flowlog.Skipped{Keep: 5}
	tab, err := prog.RunRecords(context.Background(), &Records{Inputs: inputs, Errors: skipped})
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	if skipped.Count() > 0 {
		t.Fatalf("%s: skipped %d: %v", src, skipped.Count(), skipped.First())
	}
	var out []string
	for _, row := range tab.Rows {
		cells := make([]string, len(row))
		for i, v := range row {
			cells[i] = v.String()
		}
		out = append(out, strings.Join(cells, "\t"))
	}
	return out
}

// countBy counts the records that keep() accepts by the key key() gives,
// as rows "k1\tk2…\tcount".
func countBy(recs []ctRecord, keep func(*ctRecord) bool, key func(*ctRecord) []string) map[string]int {
	out := map[string]int{}
	for i := range recs {
		if keep(&recs[i]) {
			out[strings.Join(key(&recs[i]), "\t")]++
		}
	}
	return out
}

func asCounts(t *testing.T, rows []string) map[string]int {
	t.Helper()
	out := map[string]int{}
	for _, r := range rows {
		i := strings.LastIndexByte(r, '\t')
		var n int
		if _, err := fmt.Sscan(r[i+1:], &n); err != nil {
			t.Fatalf("row %q: %v", r, err)
		}
		out[r[:i]] += n
	}
	return out
}

func equalCounts(t *testing.T, name string, got, want map[string]int) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the generated data has no matching record: the test proves nothing", name)
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%s: %q: got %d, want %d", name, k, got[k], n)
		}
	}
	for k, n := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("%s: unexpected row %q (%d)", name, k, n)
		}
	}
}

// TestAWSSampleQueriesOverCloudTrail runs the CloudTrail sample queries of
// AWS's Logs Insights documentation ("Sample queries", "Queries for
// CloudTrail logs") over generated CloudTrail delivery files and compares
// each answer with one computed from the generated records.
func TestAWSSampleQueriesOverCloudTrail(t *testing.T) {
	recs, inputs := genTrail(t, 3000, 7)
	all := func(*ctRecord) bool { return true }
	outdated := func(r *ctRecord) bool { return r.tls == "TLSv1" || r.tls == "TLSv1.1" }

	t.Run("entries by service, event and region", func(t *testing.T) {
		got := asCounts(t, rowsOf(t, `stats count(*) by eventSource, eventName, awsRegion`, inputs))
		equalCounts(t, "count by", got, countBy(recs, all, func(r *ctRecord) []string { return []string{r.source, r.name, r.region} }))
	})
	t.Run("EC2 hosts started or stopped in a region", func(t *testing.T) {
		rows := rowsOf(t, `filter (eventName="StartInstances" or eventName="StopInstances") and awsRegion="us-east-2" | fields eventTime, eventName`, inputs)
		var want []string
		for _, r := range recs {
			if (r.name == "StartInstances" || r.name == "StopInstances") && r.region == "us-east-2" {
				want = append(want, r.time.Format(time.RFC3339)+"\t"+r.name)
			}
		}
		if len(want) == 0 || !slices.Equal(rows, want) {
			t.Errorf("got %d rows, want %d in record order\n got %q\nwant %q", len(rows), len(want), first(rows), first(want))
		}
	})
	t.Run("newly created IAM users", func(t *testing.T) {
		rows := rowsOf(t, `filter eventName="CreateUser" | fields awsRegion, requestParameters.userName, responseElements.user.arn`, inputs)
		var want []string
		for _, r := range recs {
			if r.name == "CreateUser" {
				arn := r.newUserARN
				if r.errCode != "" {
					arn = "" // a failed call has no responseElements
				}
				want = append(want, r.region+"\t"+r.newUser+"\t"+arn)
			}
		}
		if len(want) == 0 || !slices.Equal(rows, want) {
			t.Errorf("got %d rows, want %d\n got %q\nwant %q", len(rows), len(want), first(rows), first(want))
		}
	})
	t.Run("exceptions of UpdateTrail", func(t *testing.T) {
		got := asCounts(t, rowsOf(t, `filter eventName="UpdateTrail" and ispresent(errorCode) | stats count(*) by errorCode, errorMessage`, inputs))
		equalCounts(t, "UpdateTrail", got, countBy(recs, func(r *ctRecord) bool { return r.name == "UpdateTrail" && r.errCode != "" },
			func(r *ctRecord) []string { return []string{r.errCode, r.errMsg} }))
	})
	t.Run("TLS 1.0 or 1.1 used", func(t *testing.T) {
		rows := rowsOf(t, `filter tlsDetails.tlsVersion in [ "TLSv1", "TLSv1.1" ]
| stats count(*) as numOutdatedTlsCalls by userIdentity.accountId, recipientAccountId, eventSource, eventName, awsRegion, tlsDetails.tlsVersion, tlsDetails.cipherSuite, userAgent
| sort eventSource, eventName, awsRegion, tlsDetails.tlsVersion`, inputs)
		want := countBy(recs, outdated, func(r *ctRecord) []string {
			return []string{r.account, r.recipient, r.source, r.name, r.region, r.tls, r.cipher, r.agent}
		})
		equalCounts(t, "outdated TLS", asCounts(t, rows), want)
		keys := make([]string, len(rows))
		for i, r := range rows {
			c := strings.Split(r, "\t")
			keys[i] = strings.Join([]string{c[2], c[3], c[4], c[5]}, "\t")
		}
		// A key without asc or desc sorts descending (docs/query-language.md).
		if !sort.IsSorted(sort.Reverse(sort.StringSlice(keys))) {
			t.Errorf("rows not sorted by eventSource, eventName, awsRegion, tlsDetails.tlsVersion (descending): %q", first(keys))
		}
	})
	t.Run("calls per service with TLS 1.0 or 1.1", func(t *testing.T) {
		rows := rowsOf(t, `filter tlsDetails.tlsVersion in [ "TLSv1", "TLSv1.1" ]
| stats count(*) as numOutdatedTlsCalls by eventSource
| sort numOutdatedTlsCalls desc`, inputs)
		want := countBy(recs, outdated, func(r *ctRecord) []string { return []string{r.source} })
		equalCounts(t, "per service", asCounts(t, rows), want)
		for i := 1; i < len(rows); i++ {
			if asCounts(t, rows[i:i+1])[strings.Split(rows[i], "\t")[0]] > asCounts(t, rows[i-1:i])[strings.Split(rows[i-1], "\t")[0]] {
				t.Errorf("not sorted by numOutdatedTlsCalls desc: %q", rows)
			}
		}
	})
	// The fields the issue names: userIdentity.type, sourceIPAddress,
	// errorMessage, responseElements.ConsoleLogin, and @timestamp.
	t.Run("failed sign-ins by user type and source, per hour", func(t *testing.T) {
		got := asCounts(t, rowsOf(t, `filter eventName = "ConsoleLogin" and responseElements.ConsoleLogin = "Failure"
| stats count(*) by userIdentity.type, sourceIPAddress, bin(1h)`, inputs))
		equalCounts(t, "sign-ins", got, countBy(recs, func(r *ctRecord) bool { return r.name == "ConsoleLogin" && r.consoleLogin == "Failure" },
			func(r *ctRecord) []string {
				return []string{r.userType, r.sourceAddr, r.time.Truncate(time.Hour).Format("2006-01-02 15:04:05.000")}
			}))
	})
	t.Run("errors by message, root excluded", func(t *testing.T) {
		got := asCounts(t, rowsOf(t, `filter userIdentity.type != "Root" and errorMessage like /authorized/ | stats count() by userIdentity.arn`, inputs))
		equalCounts(t, "errors", got, countBy(recs, func(r *ctRecord) bool { return r.userType != "Root" && strings.Contains(r.errMsg, "authorized") },
			func(r *ctRecord) []string { return []string{r.arn} }))
	})
}

func first(xs []string) []string { return xs[:min(len(xs), 3)] }
