// Package flowlog knows the VPC and Transit Gateway flow log record formats
// and decodes records into column batches for the query engine, the
// detectors and the JSON printer.
package flowlog

import "strings"

// Field identifies a flow log field by its AWS name. The zero value is
// FieldUnknown: a name in a format string that this version of flowguard does
// not know; its values are kept as strings.
type Field uint8

// Kind is how a field's values are typed once decoded.
type Kind uint8

// Value kinds.
const (
	KindString    Kind = iota // kept as bytes
	KindUint                  // unsigned integer (ports, counters, Unix seconds)
	KindAddr                  // IPv4 or IPv6 address as netip.Addr
	KindAction                // ACCEPT or REJECT
	KindLogStatus             // OK, NODATA or SKIPDATA
)

// The fields AWS defines for VPC flow logs (versions 2 to 8) and Transit
// Gateway flow logs (version 6), in the order of AWS's documentation.
const (
	FieldUnknown Field = iota
	FieldVersion
	FieldAccountID
	FieldInterfaceID
	FieldSrcAddr
	FieldDstAddr
	FieldSrcPort
	FieldDstPort
	FieldProtocol
	FieldPackets
	FieldBytes
	FieldStart
	FieldEnd
	FieldAction
	FieldLogStatus
	FieldVPCID
	FieldSubnetID
	FieldInstanceID
	FieldTCPFlags
	FieldType
	FieldPktSrcAddr
	FieldPktDstAddr
	FieldRegion
	FieldAZID
	FieldSublocationType
	FieldSublocationID
	FieldPktSrcAWSService
	FieldPktDstAWSService
	FieldFlowDirection
	FieldTrafficPath
	FieldECSClusterARN
	FieldECSClusterName
	FieldECSContainerInstanceARN
	FieldECSContainerInstanceID
	FieldECSContainerID
	FieldECSSecondContainerID
	FieldECSServiceName
	FieldECSTaskDefinitionARN
	FieldECSTaskARN
	FieldECSTaskID
	FieldRejectReason
	FieldResourceType
	FieldTGWID
	FieldTGWAttachmentID
	FieldTGWSrcVPCAccountID
	FieldTGWDstVPCAccountID
	FieldTGWSrcVPCID
	FieldTGWDstVPCID
	FieldTGWSrcSubnetID
	FieldTGWDstSubnetID
	FieldTGWSrcENI
	FieldTGWDstENI
	FieldTGWSrcAZID
	FieldTGWDstAZID
	FieldTGWPairAttachmentID
	FieldPacketsLostNoRoute
	FieldPacketsLostBlackhole
	FieldPacketsLostMTUExceeded
	FieldPacketsLostTTLExpired
	numFields
)

// NumFields is one more than the largest Field value; arrays indexed by Field
// have this length.
const NumFields = int(numFields)

// FieldInfo describes one field.
type FieldInfo struct {
	Name    string // AWS name, as in ${name}
	Version int    // flow log version that introduced it
	Kind    Kind
	// Parquet is the physical type AWS uses in Parquet delivery:
	// "INT32", "INT64" or "STRING".
	Parquet string
}

var fieldInfo = [numFields]FieldInfo{
	FieldUnknown:                 {"", 0, KindString, "STRING"},
	FieldVersion:                 {"version", 2, KindUint, "INT32"},
	FieldAccountID:               {"account-id", 2, KindString, "STRING"},
	FieldInterfaceID:             {"interface-id", 2, KindString, "STRING"},
	FieldSrcAddr:                 {"srcaddr", 2, KindAddr, "STRING"},
	FieldDstAddr:                 {"dstaddr", 2, KindAddr, "STRING"},
	FieldSrcPort:                 {"srcport", 2, KindUint, "INT32"},
	FieldDstPort:                 {"dstport", 2, KindUint, "INT32"},
	FieldProtocol:                {"protocol", 2, KindUint, "INT32"},
	FieldPackets:                 {"packets", 2, KindUint, "INT64"},
	FieldBytes:                   {"bytes", 2, KindUint, "INT64"},
	FieldStart:                   {"start", 2, KindUint, "INT64"},
	FieldEnd:                     {"end", 2, KindUint, "INT64"},
	FieldAction:                  {"action", 2, KindAction, "STRING"},
	FieldLogStatus:               {"log-status", 2, KindLogStatus, "STRING"},
	FieldVPCID:                   {"vpc-id", 3, KindString, "STRING"},
	FieldSubnetID:                {"subnet-id", 3, KindString, "STRING"},
	FieldInstanceID:              {"instance-id", 3, KindString, "STRING"},
	FieldTCPFlags:                {"tcp-flags", 3, KindUint, "INT32"},
	FieldType:                    {"type", 3, KindString, "STRING"},
	FieldPktSrcAddr:              {"pkt-srcaddr", 3, KindAddr, "STRING"},
	FieldPktDstAddr:              {"pkt-dstaddr", 3, KindAddr, "STRING"},
	FieldRegion:                  {"region", 4, KindString, "STRING"},
	FieldAZID:                    {"az-id", 4, KindString, "STRING"},
	FieldSublocationType:         {"sublocation-type", 4, KindString, "STRING"},
	FieldSublocationID:           {"sublocation-id", 4, KindString, "STRING"},
	FieldPktSrcAWSService:        {"pkt-src-aws-service", 5, KindString, "STRING"},
	FieldPktDstAWSService:        {"pkt-dst-aws-service", 5, KindString, "STRING"},
	FieldFlowDirection:           {"flow-direction", 5, KindString, "STRING"},
	FieldTrafficPath:             {"traffic-path", 5, KindUint, "INT32"},
	FieldECSClusterARN:           {"ecs-cluster-arn", 7, KindString, "STRING"},
	FieldECSClusterName:          {"ecs-cluster-name", 7, KindString, "STRING"},
	FieldECSContainerInstanceARN: {"ecs-container-instance-arn", 7, KindString, "STRING"},
	FieldECSContainerInstanceID:  {"ecs-container-instance-id", 7, KindString, "STRING"},
	FieldECSContainerID:          {"ecs-container-id", 7, KindString, "STRING"},
	FieldECSSecondContainerID:    {"ecs-second-container-id", 7, KindString, "STRING"},
	FieldECSServiceName:          {"ecs-service-name", 7, KindString, "STRING"},
	FieldECSTaskDefinitionARN:    {"ecs-task-definition-arn", 7, KindString, "STRING"},
	FieldECSTaskARN:              {"ecs-task-arn", 7, KindString, "STRING"},
	FieldECSTaskID:               {"ecs-task-id", 7, KindString, "STRING"},
	FieldRejectReason:            {"reject-reason", 8, KindString, "STRING"},
	FieldResourceType:            {"resource-type", 6, KindString, "STRING"},
	FieldTGWID:                   {"tgw-id", 6, KindString, "STRING"},
	FieldTGWAttachmentID:         {"tgw-attachment-id", 6, KindString, "STRING"},
	FieldTGWSrcVPCAccountID:      {"tgw-src-vpc-account-id", 6, KindString, "STRING"},
	FieldTGWDstVPCAccountID:      {"tgw-dst-vpc-account-id", 6, KindString, "STRING"},
	FieldTGWSrcVPCID:             {"tgw-src-vpc-id", 6, KindString, "STRING"},
	FieldTGWDstVPCID:             {"tgw-dst-vpc-id", 6, KindString, "STRING"},
	FieldTGWSrcSubnetID:          {"tgw-src-subnet-id", 6, KindString, "STRING"},
	FieldTGWDstSubnetID:          {"tgw-dst-subnet-id", 6, KindString, "STRING"},
	FieldTGWSrcENI:               {"tgw-src-eni", 6, KindString, "STRING"},
	FieldTGWDstENI:               {"tgw-dst-eni", 6, KindString, "STRING"},
	FieldTGWSrcAZID:              {"tgw-src-az-id", 6, KindString, "STRING"},
	FieldTGWDstAZID:              {"tgw-dst-az-id", 6, KindString, "STRING"},
	FieldTGWPairAttachmentID:     {"tgw-pair-attachment-id", 6, KindString, "STRING"},
	FieldPacketsLostNoRoute:      {"packets-lost-no-route", 6, KindUint, "INT64"},
	FieldPacketsLostBlackhole:    {"packets-lost-blackhole", 6, KindUint, "INT64"},
	FieldPacketsLostMTUExceeded:  {"packets-lost-mtu-exceeded", 6, KindUint, "INT64"},
	FieldPacketsLostTTLExpired:   {"packets-lost-ttl-expired", 6, KindUint, "INT64"},
}

// Info returns the description of f.
func (f Field) Info() FieldInfo {
	if int(f) >= NumFields {
		return fieldInfo[FieldUnknown]
	}
	return fieldInfo[f]
}

// MaxUnixSeconds is the largest start or end time accepted:
// 9999-12-31T23:59:59Z, the last second RFC 3339 can write.
const MaxUnixSeconds = 253402300799

// Max returns the largest valid value of an integer field; a larger one
// makes its record malformed. Ports are 16-bit, protocol and tcp-flags
// 8-bit (the IP protocol number, the TCP header's flag bits), version and
// traffic-path small codes (AWS documents 2–8 and 1–8; room is left for
// new ones), start and end Unix seconds up to year 9999. Counters (bytes,
// packets, packets-lost-*) may be any uint64.
func (f Field) Max() uint64 {
	switch f {
	case FieldSrcPort, FieldDstPort:
		return 1<<16 - 1
	case FieldProtocol, FieldTCPFlags, FieldVersion, FieldTrafficPath:
		return 1<<8 - 1
	case FieldStart, FieldEnd:
		return MaxUnixSeconds
	}
	return 1<<64 - 1
}

// String returns the AWS name of f.
func (f Field) String() string { return f.Info().Name }

// Kind returns how f's values are typed.
func (f Field) Kind() Kind { return f.Info().Kind }

var byName = func() map[string]Field {
	m := make(map[string]Field, NumFields)
	for f := FieldVersion; f < numFields; f++ {
		m[fieldInfo[f].Name] = f
	}
	return m
}()

// LookupField returns the field with the AWS name name ("srcaddr",
// "log-status"), or the name as Parquet delivery spells it ("log_status").
func LookupField(name string) (Field, bool) {
	if f, ok := byName[name]; ok {
		return f, true
	}
	if strings.IndexByte(name, '_') >= 0 {
		f, ok := byName[strings.ReplaceAll(name, "_", "-")]
		return f, ok
	}
	return FieldUnknown, false
}

// NormalizeName folds a field name the way flowguard matches names in
// queries: lower case, without '-' and '_', so that "log-status",
// "log_status" and "logStatus" are the same name.
func NormalizeName(name string) string {
	var b strings.Builder
	b.Grow(len(name))
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

var byNormalized = func() map[string]Field {
	m := make(map[string]Field, NumFields+2)
	for f := FieldVersion; f < numFields; f++ {
		m[NormalizeName(fieldInfo[f].Name)] = f
	}
	// The names CloudWatch Logs Insights discovers for flow logs.
	m["starttime"] = FieldStart
	m["endtime"] = FieldEnd
	return m
}()

// LookupQueryName resolves a field name as written in a query: an AWS name,
// a Parquet column name or a Logs Insights discovered name (srcAddr,
// logStatus, startTime …), without regard to case.
func LookupQueryName(name string) (Field, bool) {
	f, ok := byNormalized[NormalizeName(name)]
	return f, ok
}

// QueryNames returns every name LookupQueryName knows: the AWS names and
// the names Logs Insights discovers for flow logs (for "did you mean").
func QueryNames() []string {
	var names []string
	for f := FieldVersion; f < numFields; f++ {
		names = append(names, fieldInfo[f].Name)
	}
	return append(names, "srcAddr", "dstAddr", "srcPort", "dstPort", "logStatus", "accountId", "interfaceId", "startTime", "endTime")
}
