package synth

import (
	"bufio"
	"fmt"
	"io"
	"strconv"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// WriteText writes the records as flow log text in the configured format,
// one record a line, preceded by the header line S3 delivery writes when
// header is true (CloudWatch Logs text has none).
func (g *Generator) WriteText(w io.Writer, header bool) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if header {
		if _, err := bw.WriteString(g.cfg.Format.Header() + "\n"); err != nil {
			return fmt.Errorf("cannot write flow logs: %w", err)
		}
	}
	tw := g.newTextWriter()
	err := g.run(func(r *Record, _ int) error {
		buf := tw.appendRecord(bw.AvailableBuffer(), r)
		buf = append(buf, '\n')
		_, err := bw.Write(buf)
		return err
	})
	if err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("cannot write flow logs: %w", err)
	}
	return nil
}

// textWriter formats records in one format.
type textWriter struct {
	fields  []flowlog.Field
	version int64
	account string
	region  string
}

func (g *Generator) newTextWriter() *textWriter {
	f := g.cfg.Format
	tw := &textWriter{version: int64(f.Version()), account: g.cfg.AccountID, region: g.cfg.Region}
	for i := range f.Len() {
		tw.fields = append(tw.fields, f.Field(i))
	}
	return tw
}

// AppendText appends r as a line of text in the generator's format,
// without the newline.
func (g *Generator) AppendText(dst []byte, r *Record) []byte {
	return g.newTextWriter().appendRecord(dst, r)
}

func (tw *textWriter) appendRecord(b []byte, r *Record) []byte {
	for i, f := range tw.fields {
		if i > 0 {
			b = append(b, ' ')
		}
		b = tw.appendField(b, f, r)
	}
	return b
}

// appendField appends the text of field f of r, "-" when absent.
func (tw *textWriter) appendField(b []byte, f flowlog.Field, r *Record) []byte {
	switch f {
	case flowlog.FieldVersion:
		return strconv.AppendInt(b, tw.version, 10)
	case flowlog.FieldAccountID:
		return append(b, tw.account...)
	case flowlog.FieldInterfaceID:
		return append(b, r.Iface.ID...)
	case flowlog.FieldStart:
		return strconv.AppendInt(b, r.Start, 10)
	case flowlog.FieldEnd:
		return strconv.AppendInt(b, r.End, 10)
	case flowlog.FieldLogStatus:
		return append(b, r.LogStatus.String()...)
	case flowlog.FieldVPCID:
		return append(b, r.Iface.VPCID...)
	case flowlog.FieldSubnetID:
		return append(b, r.Iface.SubnetID...)
	case flowlog.FieldInstanceID:
		return appendOpt(b, r.Iface.InstanceID)
	case flowlog.FieldRegion:
		return append(b, tw.region...)
	case flowlog.FieldAZID:
		return append(b, r.Iface.AZID...)
	}
	if r.LogStatus != flowlog.LogStatusOK {
		return append(b, '-')
	}
	return appendTraffic(b, f, r)
}

// appendTraffic appends a field that only records with log-status OK have.
func appendTraffic(b []byte, f flowlog.Field, r *Record) []byte {
	switch f {
	case flowlog.FieldSrcAddr:
		return r.SrcAddr.AppendTo(b)
	case flowlog.FieldDstAddr:
		return r.DstAddr.AppendTo(b)
	case flowlog.FieldPktSrcAddr:
		return r.PktSrc.AppendTo(b)
	case flowlog.FieldPktDstAddr:
		return r.PktDst.AppendTo(b)
	case flowlog.FieldSrcPort:
		return strconv.AppendUint(b, uint64(r.SrcPort), 10)
	case flowlog.FieldDstPort:
		return strconv.AppendUint(b, uint64(r.DstPort), 10)
	case flowlog.FieldProtocol:
		return strconv.AppendUint(b, uint64(r.Protocol), 10)
	case flowlog.FieldPackets:
		return strconv.AppendUint(b, r.Packets, 10)
	case flowlog.FieldBytes:
		return strconv.AppendUint(b, r.Bytes, 10)
	case flowlog.FieldAction:
		return append(b, r.Action.String()...)
	case flowlog.FieldTCPFlags:
		return strconv.AppendUint(b, uint64(r.TCPFlags), 10)
	case flowlog.FieldType:
		if r.SrcAddr.Is6() {
			return append(b, "IPv6"...)
		}
		return append(b, "IPv4"...)
	case flowlog.FieldPktSrcAWSService:
		return appendOpt(b, r.PktSrcService)
	case flowlog.FieldPktDstAWSService:
		return appendOpt(b, r.PktDstService)
	case flowlog.FieldFlowDirection:
		return append(b, r.Direction.String()...)
	case flowlog.FieldTrafficPath:
		if r.TrafficPath == 0 {
			return append(b, '-')
		}
		return strconv.AppendUint(b, uint64(r.TrafficPath), 10)
	}
	// Sublocations, Transit Gateway, ECS and reject-reason fields, and
	// fields flowguard does not know: absent.
	return append(b, '-')
}

func appendOpt(b []byte, s string) []byte {
	if s == "" {
		return append(b, '-')
	}
	return append(b, s...)
}
