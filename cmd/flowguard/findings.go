package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/server"
	"github.com/flowguard/flowguard/internal/source"
	"github.com/flowguard/flowguard/internal/store"
	"github.com/spf13/cobra"
)

// dbFlag is the --db flag of the commands that use the store.
type dbFlag struct{ path string }

func (d *dbFlag) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&d.path, "db", "",
		"database file (default: $"+store.EnvDB+", else $XDG_DATA_HOME/flowguard/flowguard.db, else ~/.local/share/flowguard/flowguard.db)")
}

// resolve returns the database path the flag names.
func (d *dbFlag) resolve() (string, error) {
	if d.path != "" {
		return d.path, nil
	}
	return store.DefaultPath()
}

// open opens the store. With mustExist, a missing database file is an error
// (for commands that change findings: there is nothing to change) rather
// than a new empty database.
func (d *dbFlag) open(ctx context.Context, mustExist bool) (*store.Store, error) {
	p, err := d.resolve()
	if err != nil {
		return nil, err
	}
	if mustExist {
		if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
			return nil, exitError{code: 1, msg: fmt.Sprintf("no database at %s (flowguard detect records findings there; --db names another)", p)}
		}
	}
	return store.Open(ctx, p)
}

// openFinding opens the database, which must exist, and resolves ref (an
// id or a unique prefix of one) to a finding's id.
func (d *dbFlag) openFinding(ctx context.Context, ref string) (*store.Store, string, error) {
	st, err := d.open(ctx, true)
	if err != nil {
		return nil, "", err
	}
	id, err := st.ResolveID(ctx, ref)
	if err != nil {
		st.Close()
		return nil, "", err
	}
	return st, id, nil
}

// exists reports whether the database file is there.
func (d *dbFlag) exists() (string, bool) {
	p, err := d.resolve()
	if err != nil {
		return "", false
	}
	_, err = os.Stat(p)
	return p, err == nil
}

func checkOutput(output string) error {
	if output != "table" && output != "json" {
		return fmt.Errorf("--output %q: use table or json", output)
	}
	return nil
}

func newFindingsCmd() *cobra.Command {
	var db dbFlag
	cmd := &cobra.Command{
		Use:   "findings",
		Short: "List, show, archive and give feedback on recorded findings",
		Long: `Work with the findings recorded in flowguard's database: list and show them,
archive and unarchive them, give feedback, and manage suppression rules
that archive matching findings automatically.

Finding ids can be shortened to any unique prefix of at least 6 characters.`,
	}
	db.register(cmd)
	cmd.AddCommand(
		newFindingsListCmd(&db),
		newFindingsShowCmd(&db),
		newFindingsArchiveCmd(&db, true),
		newFindingsArchiveCmd(&db, false),
		newFindingsFeedbackCmd(&db),
		newFindingsSuppressCmd(&db),
		newFindingsCorrelateCmd(&db),
	)
	return cmd
}

func newFindingsListCmd(db *dbFlag) *cobra.Command {
	var output, minSev, archived, since string
	var types, actors []string
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--type T] [--min-severity S] [--actor IP|CIDR] [--archived no|yes|all] [--since T]",
		Short: "List findings, most recently seen first",
		Long: `List findings, most recently seen first. By default only current (not
archived) findings are listed, as in the GuardDuty console.

  --type         a finding type, or a prefix ending in * (Recon:*); repeatable
  --min-severity a number from 0 to 10, or low, medium, high
  --actor        an IP address or CIDR block; repeatable
  --since        a duration back from now (90m, 24h, 7d), an RFC 3339 time or a date`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			fl := finding.Filter{Types: types, Limit: limit}
			var err error
			if minSev != "" {
				if fl.MinSeverity, err = finding.ParseSeverity(minSev); err != nil {
					return fmt.Errorf("--min-severity: %w", err)
				}
			}
			if fl.Archived, err = finding.ParseArchivedFilter(archived); err != nil {
				return fmt.Errorf("--archived: %w", err)
			}
			if fl.Actors, err = finding.ParsePrefixes(actors); err != nil {
				return fmt.Errorf("--actor: %w", err)
			}
			if since != "" {
				if fl.Since, err = parseSince(since, time.Now()); err != nil {
					return fmt.Errorf("--since: %w", err)
				}
			}
			if err := fl.Validate(); err != nil {
				return err
			}
			var fs []finding.Finding
			if p, ok := db.exists(); !ok {
				fmt.Fprintf(cmd.ErrOrStderr(), "flowguard: no database at %s yet: no findings\n", p)
			} else {
				st, err := db.open(cmd.Context(), true)
				if err != nil {
					return err
				}
				defer st.Close()
				if fs, err = st.ListFindings(cmd.Context(), fl); err != nil {
					return err
				}
			}
			return writeFindingList(cmd.OutOrStdout(), output, fs, fl.Archived != finding.CurrentOnly)
		},
	}
	f := cmd.Flags()
	f.StringVarP(&output, "output", "o", "table", "output format: table or json (an array of findings)")
	f.StringArrayVar(&types, "type", nil, "finding type or prefix ending in * (repeatable)")
	f.StringVar(&minSev, "min-severity", "", "lowest severity: 0-10, low, medium or high")
	f.StringArrayVar(&actors, "actor", nil, "actor IP address or CIDR block (repeatable)")
	f.StringVar(&archived, "archived", "no", "archived findings: no, yes or all")
	f.StringVar(&since, "since", "", "last seen at or after: a duration back from now (24h, 7d), an RFC 3339 time or a date")
	f.IntVar(&limit, "limit", 0, "list at most this many findings (0: all)")
	return cmd
}

// parseSince reads a duration back from now ("90m", "24h", "7d"), an RFC
// 3339 time or a date (midnight UTC).
func parseSince(s string, now time.Time) (time.Time, error) {
	s = strings.TrimSpace(s)
	if n, ok := strings.CutSuffix(s, "d"); ok {
		if d, err := strconv.ParseFloat(n, 64); err == nil && d >= 0 {
			return now.Add(-time.Duration(d * 24 * float64(time.Hour))), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%q: want a duration (24h, 7d), an RFC 3339 time or a date (2006-01-02)", s)
}

// writeFindingList prints findings as a table or as a JSON array of the
// DESIGN.md shape (never null). withArchived adds an ARCHIVED column.
func writeFindingList(w io.Writer, output string, fs []finding.Finding, withArchived bool) error {
	if output == "json" {
		return server.WriteFindings(w, fs)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	hdr := "ID\tSEVERITY\tTYPE\tACTOR\tTARGET\tPORTS\tCOUNT\tLAST SEEN"
	if withArchived {
		hdr += "\tARCHIVED"
	}
	fmt.Fprintln(tw, hdr)
	for i := range fs {
		f := &fs[i]
		fmt.Fprintf(tw, "%s\t%s %.1f\t%s\t%s\t%s\t%s\t%d\t%s", escaped(
			shortID(f.ID), finding.Level(f.Severity), f.Severity, f.Type, addrOr(f.Actor.IP.String(), f.Actor.IP.IsValid()),
			targetText(f.Target), portsText(f.Target.Ports, 5), f.Count, timeText(f.LastSeen))...)
		if withArchived {
			fmt.Fprintf(tw, "\t%s", yesNo(f.Archived))
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// shortID is the id as tables print it: 12 characters, which any command
// taking an id accepts.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func addrOr(s string, ok bool) string {
	if !ok {
		return "-"
	}
	return s
}

func targetText(t finding.Target) string {
	if t.IP.IsValid() {
		return t.IP.String()
	}
	if t.InterfaceID != "" {
		return t.InterfaceID
	}
	if t.Resource != "" { // CloudTrail and GuardDuty findings
		return t.Resource
	}
	return "(many)"
}

// portsText lists up to n ports and how many more there are.
func portsText(ps []uint16, n int) string {
	if len(ps) == 0 {
		return "-"
	}
	var b strings.Builder
	for i, p := range ps {
		if n > 0 && i == n {
			fmt.Fprintf(&b, ",+%d", len(ps)-n)
			break
		}
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.Itoa(int(p)))
	}
	return b.String()
}

func timeText(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// resolveIDs turns the ids (or unique prefixes) on the command line into
// full ids; an unknown one is an error naming it.
func resolveIDs(ctx context.Context, st *store.Store, args []string) ([]string, error) {
	ids := make([]string, 0, len(args))
	for _, a := range args {
		id, err := st.ResolveID(ctx, a)
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, nil
}

func newFindingsShowCmd(db *dbFlag) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one finding with its evidence and history",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, id, err := db.openFinding(ctx, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			f, err := st.GetFinding(ctx, id)
			if err != nil {
				return err
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), f)
			}
			hist, err := st.FindingHistory(ctx, id)
			if err != nil {
				return err
			}
			return writeFindingDetail(cmd.OutOrStdout(), &f, hist)
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json (the finding)")
	return cmd
}

// showHistory is how many of the latest history entries show prints.
const showHistory = 20

func writeFindingDetail(w io.Writer, f *finding.Finding, hist []store.HistoryEntry) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", escaped(k, v)...)
		}
	}
	row("ID", f.ID)
	row("Type", f.Type)
	row("Severity", fmt.Sprintf("%s (%.1f)", finding.Level(f.Severity), f.Severity))
	row("Title", f.Title)
	row("Description", f.Description)
	actor := addrOr(f.Actor.IP.String(), f.Actor.IP.IsValid())
	if f.Actor.Direction != "" {
		actor += " (" + string(f.Actor.Direction) + ")"
	}
	row("Actor", strings.Join(nonEmpty(actor, f.Actor.InterfaceID, f.Actor.InstanceID), " "))
	row("Target", strings.Join(nonEmpty(targetText(f.Target), f.Target.InstanceID), " "))
	if f.Target.IP.IsValid() && f.Target.InterfaceID != "" {
		row("Target interface", f.Target.InterfaceID)
	}
	row("Ports", portsText(f.Target.Ports, 0))
	row("Count", strconv.FormatInt(f.Count, 10))
	row("First seen", timeText(f.FirstSeen))
	row("Last seen", timeText(f.LastSeen))
	row("Archived", yesNo(f.Archived))
	row("Feedback", f.Feedback)
	if len(f.Evidence) > 0 {
		fmt.Fprintln(tw, "Evidence:")
		keys := make([]string, 0, len(f.Evidence))
		for k := range f.Evidence {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := json.Marshal(f.Evidence[k])
			if err != nil {
				v = []byte(fmt.Sprint(f.Evidence[k]))
			}
			fmt.Fprintf(tw, "  %s\t%s\n", escaped(k, v)...)
		}
	}
	if len(hist) > 0 {
		fmt.Fprintln(tw, "History:")
		if len(hist) > showHistory {
			fmt.Fprintf(tw, "  (%d earlier entries)\n", len(hist)-showHistory)
			hist = hist[len(hist)-showHistory:]
		}
		for _, h := range hist {
			line := "  " + timeText(h.Time) + "\t" + esc(h.Kind)
			if h.Kind == store.HistoryCreated || h.Kind == store.HistoryUpdated {
				line += fmt.Sprintf("\tcount %d, severity %.1f, last seen %s", h.Count, h.Severity, timeText(h.LastSeen))
			} else if len(h.Detail) > 0 {
				line += "\t" + esc(string(h.Detail))
			}
			fmt.Fprintln(tw, line)
		}
	}
	return tw.Flush()
}

func nonEmpty(ss ...string) []string {
	out := ss[:0:0]
	for _, s := range ss {
		if s != "" {
			out = append(out, s)
		}
	}
	return out
}

func newFindingsArchiveCmd(db *dbFlag, archive bool) *cobra.Command {
	verb, short := "unarchive", "Bring archived findings back to the current list"
	if archive {
		verb, short = "archive", "Archive findings: hidden from the current list and not sent to responders"
	}
	return &cobra.Command{
		Use:   verb + " ID...",
		Short: short,
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := db.open(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			ids, err := resolveIDs(ctx, st, args)
			if err != nil {
				return err
			}
			var n int
			if archive {
				n, err = st.Archive(ctx, ids...)
			} else {
				n, err = st.Unarchive(ctx, ids...)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%sd %d of %d finding(s)", verb, n, len(ids))
			if n < len(ids) {
				fmt.Fprintf(cmd.OutOrStdout(), " (%d already %sd)", len(ids)-n, verb)
			}
			fmt.Fprintln(cmd.OutOrStdout())
			return nil
		},
	}
}

func newFindingsFeedbackCmd(db *dbFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "feedback ID useful|not-useful",
		Short: "Record whether a finding was useful, as in GuardDuty",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			value, err := finding.ParseFeedback(args[1])
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			st, id, err := db.openFinding(ctx, args[0])
			if err != nil {
				return err
			}
			defer st.Close()
			if err := st.SetFeedback(ctx, id, value); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "feedback %s recorded on %s\n", value, shortID(id))
			return nil
		},
	}
}

func newFindingsSuppressCmd(db *dbFlag) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "suppress",
		Short: "Manage suppression rules, which archive matching findings automatically",
		Long: `Suppression rules archive the findings that match all of their criteria, as
GuardDuty's do: matching findings are still recorded, but archived, and not
sent to responders. Adding a rule also archives the current findings it
matches; removing one leaves them archived.`,
	}
	cmd.AddCommand(newSuppressAddCmd(db), newSuppressListCmd(db), newSuppressRemoveCmd(db))
	return cmd
}

func newSuppressAddCmd(db *dbFlag) *cobra.Command {
	var r finding.SuppressionRule
	var ports []uint
	var sevBelow string
	cmd := &cobra.Command{
		Use:   "add --name NAME [--type T] [--actor IP|CIDR] [--target IP|CIDR] [--port P] [--severity-below S]",
		Short: "Add a suppression rule and archive the current findings it matches",
		Example: `  flowguard findings suppress add --name vendor-scanner --type 'Recon:*' --actor 198.51.100.0/28
  flowguard findings suppress add --name quiet-rejects --type Recon:EC2/RepeatedReject --severity-below medium`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, p := range ports {
				if p == 0 || p > 65535 {
					return fmt.Errorf("--port %d: want 1 to 65535", p)
				}
				r.Ports = append(r.Ports, uint16(p))
			}
			if sevBelow != "" {
				v, err := finding.ParseSeverity(sevBelow)
				if err != nil {
					return fmt.Errorf("--severity-below: %w", err)
				}
				r.SeverityBelow = v
			}
			if err := r.Validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			st, err := db.open(ctx, false)
			if err != nil {
				return err
			}
			defer st.Close()
			n, err := st.AddSuppressionRule(ctx, r)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "added suppression rule %s; archived %d current finding(s)\n", r.Name, n)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&r.Name, "name", "", "rule name (required, unique)")
	f.StringVar(&r.Description, "description", "", "why the rule exists")
	f.StringArrayVar(&r.Types, "type", nil, "finding type or prefix ending in * (repeatable)")
	f.StringArrayVar(&r.Actors, "actor", nil, "actor IP address or CIDR block (repeatable)")
	f.StringArrayVar(&r.Targets, "target", nil, "target IP address or CIDR block (repeatable)")
	f.UintSliceVar(&ports, "port", nil, "target port (repeatable, or comma-separated)")
	f.StringVar(&sevBelow, "severity-below", "", "match findings below this severity: 0-10, low, medium or high")
	return cmd
}

func newSuppressListCmd(db *dbFlag) *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List suppression rules",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output); err != nil {
				return err
			}
			var rules []store.SuppressionRule
			if _, ok := db.exists(); ok {
				st, err := db.open(cmd.Context(), true)
				if err != nil {
					return err
				}
				defer st.Close()
				if rules, err = st.ListSuppressionRules(cmd.Context()); err != nil {
					return err
				}
			}
			w := cmd.OutOrStdout()
			if output == "json" {
				return writeJSONList(w, rules)
			}
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tCRITERIA\tCREATED\tDESCRIPTION")
			for _, r := range rules {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", escaped(r.Name, criteriaText(&r.SuppressionRule), timeText(r.Created), r.Description)...)
			}
			return tw.Flush()
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "table", "output format: table or json")
	return cmd
}

// criteriaText describes a rule's criteria in one line.
func criteriaText(r *finding.SuppressionRule) string {
	var parts []string
	if len(r.Types) > 0 {
		parts = append(parts, "type="+strings.Join(r.Types, "|"))
	}
	if len(r.Actors) > 0 {
		parts = append(parts, "actor="+strings.Join(r.Actors, "|"))
	}
	if len(r.Targets) > 0 {
		parts = append(parts, "target="+strings.Join(r.Targets, "|"))
	}
	if len(r.Ports) > 0 {
		parts = append(parts, "port="+strings.ReplaceAll(portsText(r.Ports, 0), ",", "|"))
	}
	if r.SeverityBelow > 0 {
		parts = append(parts, fmt.Sprintf("severity<%g", r.SeverityBelow))
	}
	return strings.Join(parts, " ")
}

func newSuppressRemoveCmd(db *dbFlag) *cobra.Command {
	return &cobra.Command{
		Use:   "remove NAME...",
		Short: "Remove suppression rules (the findings they archived stay archived)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			st, err := db.open(ctx, true)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, name := range args {
				if err := st.RemoveSuppressionRule(ctx, name); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "removed suppression rule %s\n", name)
			}
			return nil
		},
	}
}

// recordStream records a batch run's findings as one stream of the store
// (store.StreamCommit): the stream is named by the inputs' identities
// (device, inode and first bytes of a file; the URL and size of an S3
// object) and sizes, so that a run over the same inputs replaces its own
// earlier contribution, and a run over inputs that cover an earlier run's
// (the same files, grown, and more) supersedes it. Standard input has no
// identity: its findings always add.
func recordStream(ctx context.Context, st *store.Store, fs []finding.Finding, inputs []flowlog.Input) (store.CommitResult, error) {
	var ins []store.StreamInput
	for _, in := range inputs {
		if in.Name == "-" {
			ins = nil
			break
		}
		if strings.HasPrefix(in.Name, "s3://") {
			ins = append(ins, store.StreamInput{Identity: in.Name, Size: in.Size, Name: in.Name})
			continue
		}
		id, size, err := source.Identity(in.Name)
		if err != nil {
			return store.CommitResult{}, fmt.Errorf("cannot identify input %s: %w", in.Name, err)
		}
		ins = append(ins, store.StreamInput{Identity: id, Size: size, Name: in.Name})
	}
	h := sha256.New()
	if ins == nil {
		fmt.Fprintf(h, "stdin %d", time.Now().UnixNano())
	}
	sorted := slices.Clone(ins)
	slices.SortFunc(sorted, func(a, b store.StreamInput) int { return strings.Compare(a.Identity, b.Identity) })
	for _, in := range sorted {
		fmt.Fprintf(h, "%s %d\n", in.Identity, in.Size)
	}
	stream := "detect:" + hex.EncodeToString(h.Sum(nil)[:12])
	return st.CommitStream(ctx, store.StreamCommit{Stream: stream, Findings: fs, Inputs: ins})
}
