package flowlog

import "strings"

// Action is the action field: ACCEPT or REJECT. The zero value means absent.
type Action uint8

// Actions.
const (
	ActionAbsent Action = iota
	ActionAccept
	ActionReject
)

func (a Action) String() string {
	switch a {
	case ActionAccept:
		return "ACCEPT"
	case ActionReject:
		return "REJECT"
	}
	return "-"
}

func parseAction(b []byte) (Action, bool) {
	switch string(b) {
	case "ACCEPT":
		return ActionAccept, true
	case "REJECT":
		return ActionReject, true
	case "-":
		return ActionAbsent, true
	}
	return ActionAbsent, false
}

// LogStatus is the log-status field. The zero value means absent.
type LogStatus uint8

// Log statuses.
const (
	LogStatusAbsent LogStatus = iota
	LogStatusOK
	LogStatusNoData
	LogStatusSkipData
)

func (s LogStatus) String() string {
	switch s {
	case LogStatusOK:
		return "OK"
	case LogStatusNoData:
		return "NODATA"
	case LogStatusSkipData:
		return "SKIPDATA"
	}
	return "-"
}

func parseLogStatus(b []byte) (LogStatus, bool) {
	switch string(b) {
	case "OK":
		return LogStatusOK, true
	case "NODATA":
		return LogStatusNoData, true
	case "SKIPDATA":
		return LogStatusSkipData, true
	case "-":
		return LogStatusAbsent, true
	}
	return LogStatusAbsent, false
}

// TCP flag bits as flow logs record them (OR-ed over the aggregation
// window).
const (
	TCPFin = 1 << iota
	TCPSyn
	TCPRst
	TCPPsh
	TCPAck
	TCPUrg
)

var tcpFlagNames = [...]string{"FIN", "SYN", "RST", "PSH", "ACK", "URG"}

// TCPFlagNames names the bits set in a tcp-flags value, lowest bit first:
// 2 is "SYN", 18 is "SYN,ACK", 19 is "FIN,SYN,ACK". Bits above URG are
// named by their value.
func TCPFlagNames(v uint64) string {
	var parts []string
	for i, n := range tcpFlagNames {
		if v&(1<<i) != 0 {
			parts = append(parts, n)
		}
	}
	if rest := v &^ (1<<len(tcpFlagNames) - 1); rest != 0 {
		parts = append(parts, "0x"+strings.ToUpper(formatHex(rest)))
	}
	return strings.Join(parts, ",")
}

func formatHex(v uint64) string {
	const digits = "0123456789abcdef"
	var buf [16]byte
	i := len(buf)
	for {
		i--
		buf[i] = digits[v&15]
		v >>= 4
		if v == 0 {
			return string(buf[i:])
		}
	}
}

// IsInitiator reports whether tcp-flags show the side that opened the
// connection: SYN without ACK.
func IsInitiator(flags uint64) bool { return flags&TCPSyn != 0 && flags&TCPAck == 0 }
