package sgaudit

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// WriteSummary prints how long a period the evidence covers, what was not
// counted, and the warnings.
func (rep *Report) WriteSummary(w io.Writer) {
	if rep.Start.IsZero() {
		fmt.Fprintln(w, "evidence: no flow log records: no rule can be judged by traffic")
	} else {
		fmt.Fprintf(w, "evidence: %s to %s (%s); %d records, %d accepted flows started by their sender, %d replies (not uses)\n",
			rep.Start.Format(time.RFC3339), rep.End.Format(time.RFC3339), human(rep.Period), rep.Records, rep.Accepted, rep.Returns)
	}
	if rep.Short {
		fmt.Fprintf(w, "warning: %s of logs is under %s: too short to call a rule unused (a weekly job is invisible in a day of logs)\n",
			human(rep.Period), human(rep.MinPeriod))
	}
	if len(rep.Silent) > 0 {
		fmt.Fprintf(w, "warning: %d interface(s) have no flow log records, their groups' unhit rules get no verdict: %s\n",
			len(rep.Silent), strings.Join(rep.Silent, ", "))
	}
	if rep.Unmatched > 0 {
		fmt.Fprintf(w, "warning: %d accepted flow(s) match no rule (groups or interfaces changed during the period?), e.g. %s\n",
			rep.Unmatched, strings.Join(rep.UnmatchedExamples, "; "))
	}
	if rep.Foreign > 0 {
		fmt.Fprintf(w, "note: %d record(s) on interfaces not in the inventory were ignored\n", rep.Foreign)
	}
	if rep.NoInterface > 0 {
		fmt.Fprintf(w, "note: %d record(s) without interface-id were ignored\n", rep.NoInterface)
	}
	if rep.NoGroups > 0 {
		fmt.Fprintf(w, "note: %d record(s) on interfaces without security groups (NAT gateways) were ignored\n", rep.NoGroups)
	}
	if rep.Sideless > 0 {
		fmt.Fprintf(w, "note: %d record(s) where neither address is the interface's (middlebox traffic) were ignored\n", rep.Sideless)
	}
}

// Ports prints a rule's port range as the console does: "22", "8000-8100",
// "all", or for ICMP "type 8 code -1".
func (v *RuleVerdict) Ports() string {
	switch {
	case v.Protocol == "-1":
		return "all"
	case v.Protocol == "icmp" || v.Protocol == "icmpv6":
		if v.FromPort == -1 {
			return "all"
		}
		if v.ToPort == -1 {
			return fmt.Sprintf("type %d any code", v.FromPort)
		}
		return fmt.Sprintf("type %d code %d", v.FromPort, v.ToPort)
	case v.FromPort == 0 && v.ToPort == 65535:
		return "all"
	case v.FromPort == v.ToPort:
		return strconv.Itoa(int(v.FromPort))
	}
	return fmt.Sprintf("%d-%d", v.FromPort, v.ToPort)
}

func stamp(t *time.Time) string {
	if t == nil {
		return "-"
	}
	return t.Format(time.RFC3339)
}

// WriteTable prints the summary, the rules and the wanted rejects.
func (rep *Report) WriteTable(w io.Writer) error {
	rep.WriteSummary(w)
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "GROUP\tDIRECTION\tPROTOCOL\tPORTS\tSOURCE\tHITS\tSOURCES\tFIRST SEEN\tLAST SEEN\tVERDICT\tSUGGESTION")
	for i := range rep.Rules {
		v := &rep.Rules[i]
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\t%s\t%s\t%s\n", v.GroupID, v.Direction, v.Protocol, v.Ports(),
			v.Source, v.Hits, v.DistinctSources, stamp(v.FirstSeen), stamp(v.LastSeen), v.Verdict, v.Suggestion)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if len(rep.Wanted) > 0 {
		fmt.Fprintln(w, "\nrejected traffic that looks wanted:")
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "INTERFACE\tGROUPS\tPROTOCOL\tPORT\tREJECTED\tSOURCES\tSUGGESTION")
		for _, x := range rep.Wanted {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%s\n", x.InterfaceID, strings.Join(x.Groups, ","), x.Protocol, x.Port,
				x.Rejected, x.DistinctSources, x.Suggestion)
		}
		return tw.Flush()
	}
	return nil
}

// WriteJSON prints the rule verdicts as a JSON array (never null).
func (rep *Report) WriteJSON(w io.Writer) error {
	rules := rep.Rules
	if rules == nil {
		rules = []RuleVerdict{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(rules)
}

// WriteCSV prints the rule verdicts with the JSON's column names.
func (rep *Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"group_id", "rule_id", "direction", "protocol", "from_port", "to_port", "source", "hits",
		"distinct_sources", "first_seen", "last_seen", "verdict", "suggestion"})
	opt := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Format(time.RFC3339)
	}
	for _, v := range rep.Rules {
		cw.Write([]string{v.GroupID, v.RuleID, v.Direction, v.Protocol, strconv.Itoa(int(v.FromPort)), strconv.Itoa(int(v.ToPort)),
			v.Source, strconv.FormatInt(v.Hits, 10), strconv.FormatInt(v.DistinctSources, 10), opt(v.FirstSeen), opt(v.LastSeen),
			v.Verdict, v.Suggestion})
	}
	cw.Flush()
	return cw.Error()
}

// permission is the JSON of one IpPermission, as the AWS CLI takes it.
func permission(r *Rule, source string) string {
	p := map[string]any{"IpProtocol": r.Protocol}
	if r.proto != -1 {
		p["FromPort"], p["ToPort"] = r.FromPort, r.ToPort
	}
	switch {
	case r.PrefixListID != "":
		p["PrefixListIds"] = []map[string]string{{"PrefixListId": r.PrefixListID}}
	case r.RefGroupID != "":
		p["UserIdGroupPairs"] = []map[string]string{{"GroupId": r.RefGroupID}}
	case strings.Contains(source, ":"):
		p["Ipv6Ranges"] = []map[string]string{{"CidrIpv6": source}}
	default:
		p["IpRanges"] = []map[string]string{{"CidrIp": source}}
	}
	b, _ := json.Marshal([]any{p})
	return string(b)
}

// WriteCommands prints AWS CLI commands that carry out the suggestions, to
// review: revoke unused rules, replace broader-than-used ones by their
// narrow prefixes. Rules without a verdict are left alone.
func (rep *Report) WriteCommands(w io.Writer) {
	fmt.Fprintln(w, "#!/bin/sh")
	fmt.Fprintln(w, "# flowguard sg-audit: review before running.")
	if rep.Short {
		fmt.Fprintf(w, "# WARNING: only %s of flow logs: too short to call a rule unused.\n", human(rep.Period))
	}
	for _, v := range rep.Rules {
		r := v.Rule
		revoke := func() string {
			if r.RuleID != "" {
				return fmt.Sprintf("aws ec2 revoke-security-group-%s --group-id %s --security-group-rule-ids %s", v.Direction, v.GroupID, r.RuleID)
			}
			return fmt.Sprintf("aws ec2 revoke-security-group-%s --group-id %s --ip-permissions '%s'", v.Direction, v.GroupID, permission(r, v.Source))
		}
		switch v.Verdict {
		case VerdictUnused:
			fmt.Fprintf(w, "\n# %s %s %s %s from %s: unused (%s)\n%s\n", v.GroupID, v.Direction, v.Protocol, v.Ports(), v.Source, v.Suggestion, revoke())
		case VerdictBroader:
			fmt.Fprintf(w, "\n# %s %s %s %s from %s: %s\n", v.GroupID, v.Direction, v.Protocol, v.Ports(), v.Source, v.Suggestion)
			for _, n := range v.Narrow {
				fmt.Fprintf(w, "aws ec2 authorize-security-group-%s --group-id %s --ip-permissions '%s'\n", v.Direction, v.GroupID, permission(r, n))
			}
			fmt.Fprintln(w, revoke())
		}
	}
}

// WriteTerraform prints a Terraform snippet to review: the narrow rules
// that replace broader-than-used ones, as aws_vpc_security_group_*_rule
// resources, and comments naming the rules to delete.
func (rep *Report) WriteTerraform(w io.Writer) {
	fmt.Fprintln(w, "# flowguard sg-audit: review before applying.")
	if rep.Short {
		fmt.Fprintf(w, "# WARNING: only %s of flow logs: too short to call a rule unused.\n", human(rep.Period))
	}
	names := map[string]int{}
	for _, v := range rep.Rules {
		r := v.Rule
		desc := fmt.Sprintf("%s %s %s %s from %s", v.GroupID, v.Direction, v.Protocol, v.Ports(), v.Source)
		if r.RuleID != "" {
			desc += " (" + r.RuleID + ")"
		}
		switch v.Verdict {
		case VerdictUnused:
			fmt.Fprintf(w, "\n# unused: delete the rule %s\n", desc)
		case VerdictBroader:
			fmt.Fprintf(w, "\n# broader than used: delete the rule %s and add:\n", desc)
			for _, n := range v.Narrow {
				name := tfName(v.GroupID + "_" + v.Direction + "_" + v.Protocol + "_" + v.Ports() + "_" + n)
				names[name]++
				if names[name] > 1 {
					name += "_" + strconv.Itoa(names[name])
				}
				fmt.Fprintf(w, "resource \"aws_vpc_security_group_%s_rule\" %q {\n", v.Direction, name)
				fmt.Fprintf(w, "  security_group_id = %q\n", v.GroupID)
				fmt.Fprintf(w, "  ip_protocol       = %q\n", v.Protocol)
				if r.proto != -1 {
					fmt.Fprintf(w, "  from_port         = %d\n", r.FromPort)
					fmt.Fprintf(w, "  to_port           = %d\n", r.ToPort)
				}
				if strings.Contains(n, ":") {
					fmt.Fprintf(w, "  cidr_ipv6         = %q\n", n)
				} else {
					fmt.Fprintf(w, "  cidr_ipv4         = %q\n", n)
				}
				fmt.Fprintf(w, "  description       = %q\n", "narrowed by flowguard sg-audit from "+v.Source)
				fmt.Fprintln(w, "}")
			}
		}
	}
}

// tfName turns s into a Terraform resource name.
func tfName(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
			b.WriteRune(c)
		default:
			b.WriteByte('_')
		}
	}
	return b.String()
}
