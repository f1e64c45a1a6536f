package cloudtrail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// delivery builds a CloudTrail delivery file of n records: console
// sign-ins (one in ten failed) and API calls, from 1,000 addresses.
func delivery(n int) []byte {
	var b bytes.Buffer
	b.WriteString(`{"Records":[`)
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		at := t0.Add(time.Duration(i) * time.Second).Format(time.RFC3339)
		ip := fmt.Sprintf("198.51.%d.%d", i%1000/250, i%250)
		if i%3 == 0 {
			outcome, extra := "Success", ""
			if i%10 == 0 {
				outcome, extra = "Failure", `"errorMessage":"Failed authentication",`
			}
			fmt.Fprintf(&b, `{"eventVersion":"1.08","userIdentity":{"type":"IAMUser","principalId":"AIDA%d","arn":"arn:aws:iam::111122223333:user/u%d","accountId":"111122223333","userName":"u%d"},"eventTime":"%s","eventSource":"signin.amazonaws.com","eventName":"ConsoleLogin","awsRegion":"us-east-1","sourceIPAddress":"%s","userAgent":"Mozilla/5.0",%s"requestParameters":null,"responseElements":{"ConsoleLogin":"%s"},"additionalEventData":{"MobileVersion":"No","MFAUsed":"Yes"},"eventID":"e%d","eventType":"AwsConsoleSignIn","recipientAccountId":"111122223333"}`,
				i%50, i%50, i%50, at, ip, extra, outcome, i)
			continue
		}
		fmt.Fprintf(&b, `{"eventVersion":"1.08","userIdentity":{"type":"AssumedRole","principalId":"AROA:s","arn":"arn:aws:sts::111122223333:assumed-role/Ops/s%d","accountId":"111122223333"},"eventTime":"%s","eventSource":"ec2.amazonaws.com","eventName":"DescribeInstances","awsRegion":"us-east-1","sourceIPAddress":"%s","userAgent":"aws-cli/2.15.0","requestParameters":{"instancesSet":{},"filterSet":{}},"responseElements":null,"eventID":"e%d","eventType":"AwsApiCall","recipientAccountId":"111122223333"}`,
			i%20, at, ip, i)
	}
	b.WriteString("]}")
	return b.Bytes()
}

// BenchmarkReadDetect reads a delivery file and runs every rule over it;
// records/s is the throughput.
func BenchmarkReadDetect(b *testing.B) {
	const n = 20000
	data := delivery(n)
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for range b.N {
		d := New(testOptions)
		r := &Reader{Event: func(e Event) error { d.Add(e); return nil }}
		if err := r.Read("bench", data); err != nil {
			b.Fatal(err)
		}
		d.Findings()
		if d.Records() != n {
			b.Fatalf("%d records", d.Records())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "records/s")
}

func TestFlatten(t *testing.T) {
	m, err := Flatten(fixture(t, "api-authorize-sg-world.json"))
	if err != nil {
		t.Fatal(err)
	}
	for k, want := range map[string]any{
		"detail.eventName":         "AuthorizeSecurityGroupIngress",
		"detail.userIdentity.type": "AssumedRole",
		"detail.requestParameters.ipPermissions.items.0.ipRanges.items.0.cidrIp": "0.0.0.0/0",
		"detail.requestParameters.ipPermissions.items.1.fromPort":                json.Number("443"),
	} {
		if m[k] != want {
			t.Errorf("%s = %v, want %v", k, m[k], want)
		}
	}
	if _, ok := m["detail.errorCode"]; ok {
		t.Error("absent field present")
	}
	if _, err := Flatten([]byte("{")); err == nil {
		t.Error("broken JSON accepted")
	}
}
