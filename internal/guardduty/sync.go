package guardduty

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	gd "github.com/aws/aws-sdk-go-v2/service/guardduty"
	"github.com/aws/aws-sdk-go-v2/service/guardduty/types"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/store"
)

// API is the part of the GuardDuty client flowguard calls.
type API interface {
	ListFindings(context.Context, *gd.ListFindingsInput, ...func(*gd.Options)) (*gd.ListFindingsOutput, error)
	GetFindings(context.Context, *gd.GetFindingsInput, ...func(*gd.Options)) (*gd.GetFindingsOutput, error)
	ArchiveFindings(context.Context, *gd.ArchiveFindingsInput, ...func(*gd.Options)) (*gd.ArchiveFindingsOutput, error)
	UnarchiveFindings(context.Context, *gd.UnarchiveFindingsInput, ...func(*gd.Options)) (*gd.UnarchiveFindingsOutput, error)
	UpdateFindingsFeedback(context.Context, *gd.UpdateFindingsFeedbackInput, ...func(*gd.Options)) (*gd.UpdateFindingsFeedbackOutput, error)
}

// getBatch is GetFindings' limit of ids per call.
const getBatch = 50

// Poll returns the findings of a detector updated at or after since
// (milliseconds since the epoch, GuardDuty's updatedAt), oldest update
// first, and the updatedAt to poll from next. Findings at the boundary
// are read again next time; their ids make that harmless.
func Poll(ctx context.Context, api API, detectorID string, since int64) ([]Finding, int64, error) {
	in := &gd.ListFindingsInput{
		DetectorId: aws.String(detectorID),
		MaxResults: aws.Int32(50),
		FindingCriteria: &types.FindingCriteria{Criterion: map[string]types.Condition{
			"updatedAt": {GreaterThanOrEqual: aws.Int64(since)},
		}},
		SortCriteria: &types.SortCriteria{AttributeName: aws.String("updatedAt"), OrderBy: types.OrderByAsc},
	}
	var ids []string
	for {
		out, err := api.ListFindings(ctx, in)
		if err != nil {
			return nil, since, fmt.Errorf("GuardDuty ListFindings (detector %s): %w", detectorID, err)
		}
		ids = append(ids, out.FindingIds...)
		if aws.ToString(out.NextToken) == "" {
			break
		}
		in.NextToken = out.NextToken
	}
	fs, err := Get(ctx, api, detectorID, ids)
	if err != nil {
		return nil, since, err
	}
	next := since
	for _, f := range fs {
		if t, err := time.Parse(time.RFC3339Nano, f.UpdatedAt); err == nil {
			next = max(next, t.UnixMilli())
		}
	}
	slices.SortStableFunc(fs, func(a, b Finding) int {
		ta, _ := time.Parse(time.RFC3339Nano, a.UpdatedAt)
		tb, _ := time.Parse(time.RFC3339Nano, b.UpdatedAt)
		return ta.Compare(tb)
	})
	return fs, next, nil
}

// Get reads findings by id, 50 a call.
func Get(ctx context.Context, api API, detectorID string, ids []string) ([]Finding, error) {
	var fs []Finding
	for len(ids) > 0 {
		n := min(len(ids), getBatch)
		out, err := api.GetFindings(ctx, &gd.GetFindingsInput{DetectorId: aws.String(detectorID), FindingIds: ids[:n]})
		if err != nil {
			return nil, fmt.Errorf("GuardDuty GetFindings (detector %s): %w", detectorID, err)
		}
		ids = ids[n:]
		for _, sf := range out.Findings {
			f, err := FromSDK(sf)
			if err != nil {
				return nil, err
			}
			fs = append(fs, f)
		}
	}
	return fs, nil
}

// FromSDK converts the SDK's finding: its fields, marshalled, carry the
// names of GuardDuty's JSON, which Finding reads without regard to case.
func FromSDK(sf types.Finding) (Finding, error) {
	b, err := json.Marshal(sf)
	if err != nil {
		return Finding{}, fmt.Errorf("GuardDuty finding %s: %w", aws.ToString(sf.Id), err)
	}
	var f Finding
	if err := json.Unmarshal(b, &f); err != nil {
		return Finding{}, fmt.Errorf("GuardDuty finding %s: %w", aws.ToString(sf.Id), err)
	}
	return f, nil
}

// Event wraps a finding as the EventBridge "GuardDuty Finding" event that
// ParseEvent reads, so that findings from the API take the same path as
// those from EventBridge.
func Event(f Finding) ([]byte, error) {
	return json.Marshal(map[string]any{
		"version": "0", "detail-type": DetailType, "source": "aws.guardduty",
		"account": f.AccountID, "region": f.Region, "time": f.UpdatedAt, "detail": f,
	})
}

// state is what both sides agreed on for one finding at the last sync.
type state struct {
	Archived bool   `json:"a,omitempty"`
	Feedback string `json:"f,omitempty"`
}

// Syncer carries archive and feedback between flowguard's store and one
// GuardDuty detector, both ways: what changed in flowguard since the last
// sync is sent to GuardDuty (ArchiveFindings, UnarchiveFindings,
// UpdateFindingsFeedback); what changed in GuardDuty is applied to the
// store. The agreed state is kept in the store under Key, so that each
// side's change is told from the other's.
type Syncer struct {
	API        API
	DetectorID string
	Store      *store.Store
}

// Key is the store checkpoint that holds the agreed state.
func (s *Syncer) Key() string { return "guardduty-sync:" + s.DetectorID }

// SyncResult counts what a sync did.
type SyncResult struct {
	Pushed, Pulled int
}

// Sync reconciles the GuardDuty findings in the store with GuardDuty:
// each stored GuardDuty finding of the detector is read from GuardDuty,
// and its archive and feedback compared with the agreed state.
func (s *Syncer) Sync(ctx context.Context) (SyncResult, error) {
	var res SyncResult
	agreed := map[string]state{}
	if raw, ok, err := s.Store.LoadCheckpoint(ctx, s.Key()); err != nil {
		return res, err
	} else if ok {
		if err := json.Unmarshal([]byte(raw), &agreed); err != nil {
			return res, fmt.Errorf("checkpoint %s: %w", s.Key(), err)
		}
	}
	all, err := s.Store.ListFindings(ctx, finding.Filter{Archived: finding.AnyArchived})
	if err != nil {
		return res, err
	}
	local := map[string]state{}
	var ids []string
	for _, f := range all {
		if d, ok := IsGuardDuty(f); ok && d == s.DetectorID {
			local[f.ID] = state{Archived: f.Archived, Feedback: f.Feedback}
			ids = append(ids, f.ID)
		}
	}
	slices.Sort(ids)
	remote := map[string]state{}
	fs, err := Get(ctx, s.API, s.DetectorID, ids)
	if err != nil {
		return res, err
	}
	for _, f := range fs {
		remote[f.ID] = state{Archived: f.Service.Archived, Feedback: f.Service.UserFeedback}
	}
	var archive, unarchive []string
	feedback := map[string][]string{}
	for _, id := range ids {
		l, r := local[id], remote[id]
		base, known := agreed[id]
		if !known {
			base = r // first sync: GuardDuty's state is the base
		}
		next := r
		if l.Archived != base.Archived && l.Archived != r.Archived {
			if l.Archived {
				archive = append(archive, id)
			} else {
				unarchive = append(unarchive, id)
			}
			next.Archived = l.Archived
		} else if r.Archived != l.Archived {
			if err := s.setArchived(ctx, id, r.Archived); err != nil {
				return res, err
			}
			res.Pulled++
		}
		if l.Feedback != base.Feedback && l.Feedback != "" && l.Feedback != r.Feedback {
			feedback[l.Feedback] = append(feedback[l.Feedback], id)
			next.Feedback = l.Feedback
		} else if r.Feedback != "" && r.Feedback != l.Feedback {
			if err := s.Store.SetFeedback(ctx, id, r.Feedback); err != nil {
				return res, err
			}
			res.Pulled++
		}
		agreed[id] = next
	}
	det := aws.String(s.DetectorID)
	for ids := range slices.Chunk(archive, getBatch) {
		if _, err := s.API.ArchiveFindings(ctx, &gd.ArchiveFindingsInput{DetectorId: det, FindingIds: ids}); err != nil {
			return res, fmt.Errorf("GuardDuty ArchiveFindings: %w", err)
		}
		res.Pushed += len(ids)
	}
	for ids := range slices.Chunk(unarchive, getBatch) {
		if _, err := s.API.UnarchiveFindings(ctx, &gd.UnarchiveFindingsInput{DetectorId: det, FindingIds: ids}); err != nil {
			return res, fmt.Errorf("GuardDuty UnarchiveFindings: %w", err)
		}
		res.Pushed += len(ids)
	}
	for _, fb := range slices.Sorted(maps.Keys(feedback)) {
		for ids := range slices.Chunk(feedback[fb], getBatch) {
			if _, err := s.API.UpdateFindingsFeedback(ctx, &gd.UpdateFindingsFeedbackInput{DetectorId: det, FindingIds: ids, Feedback: types.Feedback(fb)}); err != nil {
				return res, fmt.Errorf("GuardDuty UpdateFindingsFeedback: %w", err)
			}
			res.Pushed += len(ids)
		}
	}
	b, err := json.Marshal(agreed)
	if err != nil {
		return res, err
	}
	return res, s.Store.SaveCheckpoint(ctx, s.Key(), string(b))
}

func (s *Syncer) setArchived(ctx context.Context, id string, archived bool) error {
	var err error
	if archived {
		_, err = s.Store.Archive(ctx, id)
	} else {
		_, err = s.Store.Unarchive(ctx, id)
	}
	return err
}

// ApplyChanges applies archive, unarchive and feedback given in GuardDuty,
// as CloudTrail recorded them, to the GuardDuty findings in the store,
// and returns how many findings changed. Ids the store does not hold are
// skipped.
func ApplyChanges(ctx context.Context, st *store.Store, changes []cloudtrail.GuardDutyChange) (int, error) {
	n := 0
	for _, c := range changes {
		for _, id := range c.FindingIDs {
			f, err := st.GetFinding(ctx, id)
			var nf *store.NotFoundError
			if errors.As(err, &nf) {
				continue
			}
			if err != nil {
				return n, err
			}
			if d, ok := IsGuardDuty(f); !ok || (c.DetectorID != "" && d != c.DetectorID) {
				continue
			}
			switch c.Action {
			case "archive", "unarchive":
				if f.Archived == (c.Action == "archive") {
					continue
				}
				if c.Action == "archive" {
					_, err = st.Archive(ctx, id)
				} else {
					_, err = st.Unarchive(ctx, id)
				}
			case "feedback":
				if f.Feedback == c.Feedback || (c.Feedback != finding.Useful && c.Feedback != finding.NotUseful) {
					continue
				}
				err = st.SetFeedback(ctx, id, c.Feedback)
			default:
				continue
			}
			if err != nil {
				return n, fmt.Errorf("GuardDuty finding %s (%s by %s): %w", id, c.Action, c.User, err)
			}
			n++
		}
	}
	return n, nil
}

// Checkpoint is where a poll resumes: the newest updatedAt yielded
// (milliseconds since the epoch), and the ids of the findings yielded with
// exactly that updatedAt. The next poll reads from that millisecond on
// (updatedAt >= Millis) and skips those ids at that millisecond, so that a
// finding updated in the same millisecond as one already yielded, but
// read later, is neither lost nor yielded twice.
type Checkpoint struct {
	Millis int64
	IDs    []string // sorted
}

// Has reports whether the finding id, updated at ms, was yielded.
func (c *Checkpoint) Has(id string, ms int64) bool {
	if ms != c.Millis {
		return false
	}
	_, ok := slices.BinarySearch(c.IDs, id)
	return ok
}

// FormatCheckpoint writes a checkpoint as a source token: "MILLIS/ID,ID…".
func FormatCheckpoint(c Checkpoint) string {
	return strconv.FormatInt(c.Millis, 10) + "/" + strings.Join(c.IDs, ",")
}

// ParseCheckpoint reads a token written by FormatCheckpoint. A token of
// milliseconds alone (written before the ids were kept) meant that
// everything updated in that millisecond was yielded: it resumes at the
// next millisecond.
func ParseCheckpoint(tok string) (Checkpoint, error) {
	ms, ids, hasIDs := strings.Cut(tok, "/")
	n, err := strconv.ParseInt(ms, 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("GuardDuty checkpoint %q: %w", tok, err)
	}
	if !hasIDs {
		return Checkpoint{Millis: n + 1}, nil
	}
	c := Checkpoint{Millis: n}
	if ids != "" {
		c.IDs = strings.Split(ids, ",")
		slices.Sort(c.IDs)
	}
	return c, nil
}

// Millis returns a finding's updatedAt in milliseconds, and whether it
// is a time.
func Millis(f *Finding) (int64, bool) {
	t, err := time.Parse(time.RFC3339Nano, f.UpdatedAt)
	if err != nil {
		return 0, false
	}
	return t.UnixMilli(), true
}
