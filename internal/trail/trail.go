// Package trail joins CloudTrail records and GuardDuty findings to
// flowguard's pipeline: it reads their documents with the CloudTrail
// detections and GuardDuty's finding reader, set from the configuration,
// for flowguard detect and for the daemon alike.
package trail

import (
	"slices"

	"github.com/flowguard/flowguard/internal/cloudtrail"
	"github.com/flowguard/flowguard/internal/config"
	"github.com/flowguard/flowguard/internal/finding"
	"github.com/flowguard/flowguard/internal/flowlog"
	"github.com/flowguard/flowguard/internal/guardduty"
)

// SignInPort is the port whose expected_sources entries say where console
// sign-ins are expected from: the console is reached over HTTPS.
const SignInPort = 443

// Options derives the CloudTrail detections' settings from flowguard's
// configuration: home networks, allowlist, threat lists (loaded), and the
// sources of the expected_sources entries that list port 443 as the
// expected sign-in sources, and the cloudtrail: section's thresholds.
// Attackers and Lookup are left to the caller.
func Options(cfg *config.Config) cloudtrail.Options {
	o := cloudtrail.Options{Home: config.Prefixes(cfg.HomeNetworks), Allow: config.Prefixes(cfg.Allowlist), Threats: cfg.Threats}
	cfg.CloudTrail.Apply(&o)
	for _, x := range cfg.ExpectedSources {
		if slices.Contains(x.Ports, SignInPort) {
			o.SignInSources = append(o.SignInSources, config.Prefixes(x.Sources)...)
		}
	}
	return o
}

// Reader returns a reader of CloudTrail and EventBridge documents that
// gives CloudTrail records to d and GuardDuty findings to found; other
// EventBridge events and bad findings are skipped into errs.
func Reader(d *cloudtrail.Detector, errs flowlog.ErrorSink, found func(finding.Finding)) *cloudtrail.Reader {
	return &cloudtrail.Reader{
		Event:  func(e cloudtrail.Event) error { d.Add(e); return nil },
		Errors: errs,
		Other: func(env cloudtrail.Envelope) error {
			f, err := guardduty.ParseEvent(env.Raw)
			if err != nil {
				if errs != nil {
					errs.Skip(&flowlog.LineError{Source: env.Source, Line: env.Line, Column: 1, Msg: err.Error()})
				}
				return nil
			}
			found(f)
			return nil
		},
	}
}
