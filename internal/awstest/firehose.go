package awstest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"time"
)

// FirehoseRequest is a delivery as Amazon Data Firehose posts it to an
// HTTP endpoint destination (protocol 1.0): the records base64-encoded
// in a JSON body, the request id and access key in headers. Records of
// flow log lines are cut at line ends, about 64 KiB each.
func FirehoseRequest(url, key, id string, lines []byte) *http.Request {
	type rec struct {
		Data string `json:"data"`
	}
	body := struct {
		RequestID string `json:"requestId"`
		Timestamp int64  `json:"timestamp"`
		Records   []rec  `json:"records"`
	}{id, time.Now().UnixMilli(), []rec{}}
	for len(lines) > 0 {
		n := bytes.LastIndexByte(lines[:min(len(lines), 64<<10)], '\n') + 1
		if n == 0 {
			n = min(len(lines), 64<<10)
		}
		body.Records = append(body.Records, rec{base64.StdEncoding.EncodeToString(lines[:n])})
		lines = lines[n:]
	}
	js, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(js))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Amz-Firehose-Protocol-Version", "1.0")
	req.Header.Set("X-Amz-Firehose-Request-Id", id)
	req.Header.Set("X-Amz-Firehose-Access-Key", key)
	return req
}
