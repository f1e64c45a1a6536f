package alarm

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestReplayFiles replays every testdata/replay/*.yaml file, in the manner of
// `promtool test rules`.
func TestReplayFiles(t *testing.T) {
	files, err := filepath.Glob("testdata/replay/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no replay files: %v", err)
	}
	for _, path := range files {
		rf, err := LoadReplayFile(path)
		if err != nil {
			t.Errorf("%v", err)
			continue
		}
		for _, rt := range rf.Tests {
			t.Run(filepath.Base(path)+"/"+rt.Name, func(t *testing.T) {
				diffs, err := rt.Check(&rf.Config)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range diffs {
					t.Error(d)
				}
			})
		}
	}
}

func TestReplayFileErrors(t *testing.T) {
	_, err := ReadReplayFile(strings.NewReader("config: {}\ntests: []\nbogus: 1\n"))
	if err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Errorf("unknown key: got %v", err)
	}
	rt := ReplayTest{Duration: "10m", Input: []ReplayInput{{At: "yesterday", Line: "x"}}}
	if _, _, err := rt.Run(&Config{}); err == nil || !strings.Contains(err.Error(), "input 1") {
		t.Errorf("bad time: got %v", err)
	}
	// A wrong expectation is reported, not ignored.
	rf, err := LoadReplayFile("testdata/replay/dimensions_ignore.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rt = rf.Tests[0]
	rt.Expect = rt.Expect[:1]
	rt.FinalStates = map[string]State{"source-7": StateAlarm}
	diffs, err := rt.Check(&rf.Config)
	if err != nil {
		t.Fatal(err)
	}
	if len(diffs) != 2 || !strings.Contains(diffs[0], "unexpected state change 2") || !strings.Contains(diffs[1], "final state") {
		t.Errorf("diffs %q", diffs)
	}
}
