package detect

import (
	"fmt"
	"os"
	"testing"

	"github.com/flowguard/flowguard/internal/synth"
)

func TestExplore(t *testing.T) {
	if os.Getenv("EXPLORE") == "" {
		t.Skip()
	}
	cfg := synth.DefaultConfig()
	fmt.Sscan(os.Getenv("EXPLORE"), &cfg.Records)
	cfg.Seed = 7
	if s := os.Getenv("SEED"); s != "" {
		fmt.Sscan(s, &cfg.Seed)
	}
	if os.Getenv("V5") != "" {
		cfg.Format, _ = synth.ParseFormatName("v5")
	}
	g := generate(t, cfg)
	o := Options{Settings: DefaultSettings(), Home: g.home, Threats: g.threats}
	e := runEngine(t, o, 0, 2, input("gen.log", g.text))
	for _, l := range g.labels {
		fmt.Printf("LABEL %s %s %s -> %s ports=%d records=%d %s\n", l.Scenario, l.Type, l.Actor, l.Target, len(l.Ports), l.Records, l.FirstSeen.Format("15:04"))
	}
	counts := map[string]int{}
	for _, r := range e.Results() {
		counts[r.Type]++
		if counts[r.Type] <= 8 {
			fmt.Printf("FIND %s %s %s -> %s count=%d %s | %s\n", r.Type, r.Actor.IP, r.Actor.Direction, r.Target.IP, r.Count, r.FirstSeen.Format("15:04"), r.Title)
		}
	}
	fmt.Println(counts)
	fmt.Printf("%+v\n", e.Metrics())
}
