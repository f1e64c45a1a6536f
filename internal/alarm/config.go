package alarm

import (
	"errors"
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the `alarms:` section of flowguard's configuration: metric
// filters, the alarms on their metrics, and the notification topics that
// alarm actions name.
//
//	alarms:
//	  metric_filters:
//	    - name: rejects
//	      pattern: '[version, account, eni, source, destination, srcport, destport, protocol, packets, bytes, windowstart, windowend, action="REJECT", flowlogstatus]'
//	      metric_name: RejectedConnections
//	      namespace: FlowGuard
//	      value: "1"
//	      default_value: 0
//	  alarms:
//	    - name: reject-spike
//	      namespace: FlowGuard
//	      metric_name: RejectedConnections
//	      statistic: Sum
//	      period: 300
//	      evaluation_periods: 1
//	      threshold: 100
//	      comparison_operator: GreaterThanOrEqualToThreshold
//	      treat_missing_data: notBreaching
//	      alarm_actions: [topic:SecurityAlerts]
type Config struct {
	MetricFilters []MetricFilter `yaml:"metric_filters,omitempty" json:"metric_filters,omitempty"`
	Alarms        []Alarm        `yaml:"alarms,omitempty" json:"alarms,omitempty"`
	// Topics are notification targets named by alarm actions, keyed by the
	// action string.
	Topics map[string]Topic `yaml:"topics,omitempty" json:"topics,omitempty"`
	// Warnings are notes from an import (resources skipped and why); they are
	// not part of the configuration.
	Warnings []string `yaml:"-" json:"-"`
}

// Topic is a notification topic (an SNS topic in a CloudFormation template).
type Topic struct {
	Name          string         `yaml:"name,omitempty" json:"name,omitempty"`
	Subscriptions []Subscription `yaml:"subscriptions,omitempty" json:"subscriptions,omitempty"`
}

// Subscription is one endpoint of a topic, such as protocol "email" and an
// address.
type Subscription struct {
	Protocol string `yaml:"protocol" json:"protocol"`
	Endpoint string `yaml:"endpoint" json:"endpoint"`
}

// MarshalSection renders the configuration as a YAML document with a
// top-level `alarms:` key, ready to paste into flowguard's config file.
func (c *Config) MarshalSection() ([]byte, error) {
	out, err := yaml.Marshal(map[string]*Config{"alarms": c})
	if err != nil {
		return nil, fmt.Errorf("cannot render the alarms section: %w", err)
	}
	return out, nil
}

// Validate checks every filter and alarm, and that names are unique.
func (c *Config) Validate() error {
	var errs []error
	seen := map[string]bool{}
	for i := range c.MetricFilters {
		if err := c.MetricFilters[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if n := c.MetricFilters[i].Name; seen["f:"+n] {
			errs = append(errs, fmt.Errorf("metric filter %q is defined twice", n))
		} else {
			seen["f:"+n] = true
		}
	}
	for i := range c.Alarms {
		if err := c.Alarms[i].Validate(); err != nil {
			errs = append(errs, err)
		}
		if n := c.Alarms[i].Name; seen["a:"+n] {
			errs = append(errs, fmt.Errorf("alarm %q is defined twice", n))
		} else {
			seen["a:"+n] = true
		}
	}
	return errors.Join(errs...)
}

// Engine runs a Config: log events in, metric data into a Store, alarm
// state changes out. Observe is safe for concurrent use; Evaluate is not.
type Engine struct {
	Store   *Store
	Filters []*Filter
	Alarms  []*Evaluator
}

// NewEngine compiles a configuration over a new store.
func NewEngine(c *Config) (*Engine, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{Store: NewStore()}
	for _, mf := range c.MetricFilters {
		f, err := mf.Compile(e.Store)
		if err != nil {
			return nil, err
		}
		e.Filters = append(e.Filters, f)
	}
	for _, a := range c.Alarms {
		ev, err := NewEvaluator(a, e.Store)
		if err != nil {
			return nil, err
		}
		e.Alarms = append(e.Alarms, ev)
	}
	return e, nil
}

// Observe feeds one log event (its timestamp and message) to every filter.
func (e *Engine) Observe(ts time.Time, line []byte) {
	for _, f := range e.Filters {
		f.Observe(ts, line)
	}
}

// Evaluate evaluates every alarm at now and returns the state changes, in
// the order of the alarms in the configuration.
func (e *Engine) Evaluate(now time.Time) []StateChange {
	var out []StateChange
	for _, a := range e.Alarms {
		if sc, ok := a.Evaluate(now); ok {
			out = append(out, sc)
		}
	}
	return out
}
