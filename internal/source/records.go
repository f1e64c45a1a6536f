package source

// RecordLines appends to dst, as flow log text lines, the records in one
// blob a stream or a Lambda trigger delivered: the messages of a gzip
// CloudWatch Logs subscription payload's log events (none for a
// CONTROL_MESSAGE), or else the blob itself, taken as flow log lines. It
// returns the newest event time it saw (milliseconds, 0 if none). It is the
// decoder the live sources use, for the Lambda handler (internal/lambda).
func RecordLines(dst, data []byte) ([]byte, int64, error) {
	return appendRecordLines(dst, data)
}
