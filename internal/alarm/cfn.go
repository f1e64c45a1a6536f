package alarm

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// ImportCloudFormation reads a CloudFormation template (YAML, with the
// short-form tags !Ref, !Sub, !GetAtt, !Join, !Select, !Split, !FindInMap,
// !If, !Equals, !Not, !And, !Or, !Condition, !Base64; or JSON) and converts
// its AWS::Logs::MetricFilter, AWS::CloudWatch::Alarm and AWS::SNS::Topic /
// AWS::SNS::Subscription resources into a flowguard alarms configuration.
//
// params gives template parameters by name, and optionally the pseudo
// parameters AWS::Region, AWS::AccountId, AWS::Partition and AWS::StackName.
// A !Ref to a parameter resolves from params, else from the parameter's
// Default; a reference that cannot be resolved is an error naming the
// resource and the property. A !Ref to an SNS topic becomes the topic's ARN
// when its TopicName, the region and the account are known, else
// "cfn:LogicalId"; other resource references and !GetAtt become
// "cfn:LogicalId" / "cfn:LogicalId.Attribute".
//
// Alarms on metrics that no imported metric filter publishes (for example
// AWS/EC2 CPUUtilization) and metric-math alarms are skipped, with a note in
// Config.Warnings.
func ImportCloudFormation(r io.Reader, params map[string]string) (*Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("cannot read template: %w", err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, fmt.Errorf("cannot parse template: %w", err)
	}
	if root.Kind == 0 {
		return nil, fmt.Errorf("template is empty")
	}
	budget := maxNodes
	doc, err := fromNode(&root, 0, &budget)
	if err != nil {
		return nil, fmt.Errorf("cannot parse template: %w", err)
	}
	top, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template is not a mapping")
	}
	t := &template{params: params, conds: map[string]*bool{}, inCond: map[string]bool{}}
	t.parameters, _ = top["Parameters"].(map[string]any)
	t.mappings, _ = top["Mappings"].(map[string]any)
	t.conditions, _ = top["Conditions"].(map[string]any)
	t.resources, ok = top["Resources"].(map[string]any)
	if !ok {
		return nil, fmt.Errorf("template has no Resources section")
	}
	return t.convert()
}

// noValue is AWS::NoValue: the property or list element is removed.
type noValue struct{}

const maxDepth = 100

// maxNodes bounds the values a template expands to, so that aliases of
// aliases ("billion laughs") cannot exhaust memory.
const maxNodes = 1 << 20

// fromNode converts a YAML node to plain values, turning short-form tags into
// their long form ({"Ref": x}, {"Fn::Sub": x}, ...).
func fromNode(n *yaml.Node, depth int, budget *int) (any, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("line %d: nested too deeply", n.Line)
	}
	if *budget--; *budget < 0 {
		return nil, fmt.Errorf("line %d: template expands to more than %d values (aliases?)", n.Line, maxNodes)
	}
	var v any
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return fromNode(n.Content[0], depth+1, budget)
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, fmt.Errorf("line %d: unknown alias", n.Line)
		}
		return fromNode(n.Alias, depth+1, budget)
	case yaml.MappingNode:
		m := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i].Value
			if _, dup := m[k]; dup {
				return nil, fmt.Errorf("line %d: key %q given twice", n.Content[i].Line, k)
			}
			val, err := fromNode(n.Content[i+1], depth+1, budget)
			if err != nil {
				return nil, err
			}
			m[k] = val
		}
		v = m
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			val, err := fromNode(c, depth+1, budget)
			if err != nil {
				return nil, err
			}
			l = append(l, val)
		}
		v = l
	case yaml.ScalarNode:
		if isShortTag(n.Tag) {
			v = n.Value
		} else if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
	}
	if !isShortTag(n.Tag) {
		return v, nil
	}
	name := n.Tag[1:]
	switch name {
	case "Ref", "Condition":
		return map[string]any{name: v}, nil
	case "GetAtt":
		if s, ok := v.(string); ok {
			res, attr, found := strings.Cut(s, ".")
			if !found {
				return nil, fmt.Errorf("line %d: !GetAtt %q is not Resource.Attribute", n.Line, s)
			}
			v = []any{res, attr}
		}
	}
	return map[string]any{"Fn::" + name: v}, nil
}

func isShortTag(tag string) bool { return strings.HasPrefix(tag, "!") && !strings.HasPrefix(tag, "!!") }

type template struct {
	params     map[string]string
	parameters map[string]any
	mappings   map[string]any
	conditions map[string]any
	resources  map[string]any
	conds      map[string]*bool
	inCond     map[string]bool
}

// site names where a value is being resolved, for error messages.
type site struct{ resource, property string }

func (s site) errorf(format string, args ...any) error {
	return fmt.Errorf("resource %s property %s: %s", s.resource, s.property, fmt.Sprintf(format, args...))
}

func (t *template) resourceType(id string) string {
	r, _ := t.resources[id].(map[string]any)
	s, _ := r["Type"].(string)
	return s
}

func (t *template) resourceProps(id string) map[string]any {
	r, _ := t.resources[id].(map[string]any)
	p, _ := r["Properties"].(map[string]any)
	return p
}

// ref resolves a Ref to a parameter, pseudo parameter or resource.
func (t *template) ref(s site, name string, depth int) (any, error) {
	if v, ok := t.params[name]; ok {
		return t.typedParam(name, v), nil
	}
	switch name {
	case "AWS::NoValue":
		return noValue{}, nil
	case "AWS::Partition":
		return "aws", nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::Region", "AWS::AccountId", "AWS::StackName", "AWS::StackId", "AWS::NotificationARNs":
		return nil, s.errorf("!Ref %s: pseudo parameter not given (pass it as a parameter %s=VALUE)", name, name)
	}
	if p, ok := t.parameters[name].(map[string]any); ok {
		def, has := p["Default"]
		if !has {
			return nil, s.errorf("!Ref %s: parameter has no value and no Default (pass it as a parameter %s=VALUE)", name, name)
		}
		return t.resolve(s, def, depth+1)
	}
	if _, ok := t.resources[name]; ok {
		return t.resourceRef(s, name, depth)
	}
	return nil, s.errorf("!Ref %s: no such parameter or resource", name)
}

// typedParam converts a parameter given on the command line to a number for
// Number parameters.
func (t *template) typedParam(name, v string) any {
	if p, ok := t.parameters[name].(map[string]any); ok {
		if typ, _ := p["Type"].(string); typ == "Number" {
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				return f
			}
		}
		if typ, _ := p["Type"].(string); typ == "CommaDelimitedList" || strings.HasPrefix(typ, "List<") {
			var l []any
			for _, e := range strings.Split(v, ",") {
				l = append(l, strings.TrimSpace(e))
			}
			return l
		}
	}
	return v
}

// resourceRef is what !Ref returns for a resource, as far as it can be known
// without deploying the stack.
func (t *template) resourceRef(s site, id string, depth int) (any, error) {
	props := t.resourceProps(id)
	switch t.resourceType(id) {
	case "AWS::SNS::Topic":
		if name, ok := props["TopicName"]; ok {
			n, err := t.resolve(site{id, "TopicName"}, name, depth+1)
			if err != nil {
				return nil, err
			}
			region, okR := t.params["AWS::Region"]
			account, okA := t.params["AWS::AccountId"]
			if ns, ok := n.(string); ok && okR && okA {
				part := "aws"
				if p, ok := t.params["AWS::Partition"]; ok {
					part = p
				}
				return fmt.Sprintf("arn:%s:sns:%s:%s:%s", part, region, account, ns), nil
			}
		}
	case "AWS::Logs::LogGroup":
		if name, ok := props["LogGroupName"]; ok {
			return t.resolve(site{id, "LogGroupName"}, name, depth+1)
		}
	}
	return "cfn:" + id, nil
}

func (t *template) getAtt(s site, args any, depth int) (any, error) {
	l, ok := args.([]any)
	if !ok || len(l) != 2 {
		return nil, s.errorf("Fn::GetAtt needs [Resource, Attribute]")
	}
	res, _ := l[0].(string)
	attr, err := t.resolve(s, l[1], depth+1)
	if err != nil {
		return nil, err
	}
	as, _ := attr.(string)
	if _, ok := t.resources[res]; !ok || as == "" {
		return nil, s.errorf("Fn::GetAtt %v: no such resource or attribute", l)
	}
	if t.resourceType(res) == "AWS::SNS::Topic" && as == "TopicArn" {
		return t.resourceRef(s, res, depth)
	}
	if t.resourceType(res) == "AWS::SNS::Topic" && as == "TopicName" {
		if n, ok := t.resourceProps(res)["TopicName"]; ok {
			return t.resolve(site{res, "TopicName"}, n, depth+1)
		}
	}
	return "cfn:" + res + "." + as, nil
}

// resolve evaluates intrinsic functions in v.
func (t *template) resolve(s site, v any, depth int) (any, error) {
	if depth > maxDepth {
		return nil, s.errorf("references nested too deeply (a cycle?)")
	}
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := t.resolve(s, e, depth+1)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for k, arg := range x {
				if k == "Ref" || k == "Condition" || strings.HasPrefix(k, "Fn::") {
					return t.intrinsic(s, k, arg, depth)
				}
			}
		}
		out := make(map[string]any, len(x))
		for k, e := range x {
			r, err := t.resolve(s, e, depth+1)
			if err != nil {
				return nil, err
			}
			if _, skip := r.(noValue); !skip {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

func (t *template) intrinsic(s site, fn string, arg any, depth int) (any, error) {
	switch fn {
	case "Ref":
		name, ok := arg.(string)
		if !ok {
			return nil, s.errorf("Ref needs a name")
		}
		return t.ref(s, name, depth)
	case "Condition":
		name, _ := arg.(string)
		b, err := t.condition(s, name, depth)
		return b, err
	case "Fn::GetAtt":
		return t.getAtt(s, arg, depth)
	case "Fn::Sub":
		return t.sub(s, arg, depth)
	case "Fn::Join":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, s.errorf("Fn::Join needs [delimiter, [values]]")
		}
		delim, _ := l[0].(string)
		vals, err := t.resolve(s, l[1], depth+1)
		if err != nil {
			return nil, err
		}
		list, ok := vals.([]any)
		if !ok {
			return nil, s.errorf("Fn::Join: the values are not a list")
		}
		parts := make([]string, len(list))
		for i, e := range list {
			if parts[i], ok = scalarString(e); !ok {
				return nil, s.errorf("Fn::Join: element %d is not a string", i)
			}
		}
		return strings.Join(parts, delim), nil
	case "Fn::Select":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, s.errorf("Fn::Select needs [index, [values]]")
		}
		idx, err := t.resolve(s, l[0], depth+1)
		if err != nil {
			return nil, err
		}
		i, ok := toInt(idx)
		vals, err := t.resolve(s, l[1], depth+1)
		if err != nil {
			return nil, err
		}
		list, okL := vals.([]any)
		if !ok || !okL || i < 0 || i >= len(list) {
			return nil, s.errorf("Fn::Select: index %v out of range", idx)
		}
		return list[i], nil
	case "Fn::Split":
		l, ok := arg.([]any)
		if !ok || len(l) != 2 {
			return nil, s.errorf("Fn::Split needs [delimiter, string]")
		}
		delim, _ := l[0].(string)
		v, err := t.resolve(s, l[1], depth+1)
		if err != nil {
			return nil, err
		}
		str, ok := v.(string)
		if !ok || delim == "" {
			return nil, s.errorf("Fn::Split needs a delimiter and a string")
		}
		var out []any
		for _, p := range strings.Split(str, delim) {
			out = append(out, p)
		}
		return out, nil
	case "Fn::FindInMap":
		l, ok := arg.([]any)
		if !ok || len(l) < 3 {
			return nil, s.errorf("Fn::FindInMap needs [map, key, key]")
		}
		keys := make([]string, 3)
		for i := 0; i < 3; i++ {
			k, err := t.resolve(s, l[i], depth+1)
			if err != nil {
				return nil, err
			}
			if keys[i], ok = scalarString(k); !ok {
				return nil, s.errorf("Fn::FindInMap: key %d is not a string", i)
			}
		}
		m1, _ := t.mappings[keys[0]].(map[string]any)
		m2, _ := m1[keys[1]].(map[string]any)
		v, ok := m2[keys[2]]
		if !ok {
			if len(l) == 4 { // DefaultValue (AWS::LanguageExtensions)
				if d, ok := l[3].(map[string]any); ok {
					return t.resolve(s, d["DefaultValue"], depth+1)
				}
			}
			return nil, s.errorf("Fn::FindInMap %v: no such entry", keys)
		}
		return t.resolve(s, v, depth+1)
	case "Fn::If":
		l, ok := arg.([]any)
		if !ok || len(l) != 3 {
			return nil, s.errorf("Fn::If needs [condition, then, else]")
		}
		name, _ := l[0].(string)
		b, err := t.condition(s, name, depth)
		if err != nil {
			return nil, err
		}
		if b {
			return t.resolve(s, l[1], depth+1)
		}
		return t.resolve(s, l[2], depth+1)
	case "Fn::Equals", "Fn::Not", "Fn::And", "Fn::Or":
		return t.condExpr(s, map[string]any{fn: arg}, depth)
	case "Fn::Base64":
		v, err := t.resolve(s, arg, depth+1)
		if err != nil {
			return nil, err
		}
		str, ok := scalarString(v)
		if !ok {
			return nil, s.errorf("Fn::Base64 needs a string")
		}
		return base64.StdEncoding.EncodeToString([]byte(str)), nil
	}
	return nil, s.errorf("%s cannot be resolved outside AWS", fn)
}

// sub implements Fn::Sub: ${Param}, ${Resource}, ${Resource.Attr},
// ${AWS::Region}, variables from the second form, and ${!Literal}.
func (t *template) sub(s site, arg any, depth int) (any, error) {
	var str string
	vars := map[string]any{}
	switch x := arg.(type) {
	case string:
		str = x
	case []any:
		if len(x) != 2 {
			return nil, s.errorf("Fn::Sub needs a string or [string, {variables}]")
		}
		str, _ = x[0].(string)
		m, ok := x[1].(map[string]any)
		if !ok {
			return nil, s.errorf("Fn::Sub variables are not a mapping")
		}
		vars = m
	default:
		return nil, s.errorf("Fn::Sub needs a string")
	}
	var b strings.Builder
	for {
		i := strings.Index(str, "${")
		if i < 0 {
			b.WriteString(str)
			return b.String(), nil
		}
		b.WriteString(str[:i])
		j := strings.IndexByte(str[i:], '}')
		if j < 0 {
			return nil, s.errorf("Fn::Sub: unterminated ${ in %q", str)
		}
		name := str[i+2 : i+j]
		str = str[i+j+1:]
		if strings.HasPrefix(name, "!") {
			b.WriteString("${" + name[1:] + "}")
			continue
		}
		var v any
		var err error
		if vv, ok := vars[name]; ok {
			v, err = t.resolve(s, vv, depth+1)
		} else if res, attr, ok := strings.Cut(name, "."); ok && !strings.HasPrefix(name, "AWS::") {
			v, err = t.getAtt(s, []any{res, attr}, depth+1)
		} else {
			v, err = t.ref(s, name, depth+1)
		}
		if err != nil {
			return nil, err
		}
		vs, ok := scalarString(v)
		if !ok {
			return nil, s.errorf("Fn::Sub: ${%s} is not a string", name)
		}
		b.WriteString(vs)
	}
}

func (t *template) condition(s site, name string, depth int) (bool, error) {
	if b := t.conds[name]; b != nil {
		return *b, nil
	}
	expr, ok := t.conditions[name]
	if !ok {
		return false, s.errorf("no condition %q", name)
	}
	if t.inCond[name] {
		return false, s.errorf("condition %q refers to itself", name)
	}
	t.inCond[name] = true
	defer delete(t.inCond, name)
	b, err := t.condExpr(site{"Conditions", name}, expr, depth+1)
	if err != nil {
		return false, err
	}
	t.conds[name] = &b
	return b, nil
}

func (t *template) condExpr(s site, expr any, depth int) (bool, error) {
	if depth > maxDepth {
		return false, s.errorf("condition nested too deeply")
	}
	m, ok := expr.(map[string]any)
	if !ok || len(m) != 1 {
		return false, s.errorf("a condition must be Fn::Equals, Fn::Not, Fn::And, Fn::Or or Condition")
	}
	for fn, arg := range m {
		switch fn {
		case "Condition":
			name, _ := arg.(string)
			return t.condition(s, name, depth)
		case "Fn::Equals":
			l, ok := arg.([]any)
			if !ok || len(l) != 2 {
				return false, s.errorf("Fn::Equals needs two values")
			}
			a, err := t.resolve(s, l[0], depth+1)
			if err != nil {
				return false, err
			}
			b, err := t.resolve(s, l[1], depth+1)
			if err != nil {
				return false, err
			}
			as, _ := scalarString(a)
			bs, _ := scalarString(b)
			return as == bs, nil
		case "Fn::Not", "Fn::And", "Fn::Or":
			l, ok := arg.([]any)
			if !ok || len(l) == 0 || (fn == "Fn::Not" && len(l) != 1) {
				return false, s.errorf("%s needs a list of conditions", fn)
			}
			res := fn == "Fn::And"
			for _, e := range l {
				b, err := t.condExpr(s, e, depth+1)
				if err != nil {
					return false, err
				}
				switch fn {
				case "Fn::Not":
					return !b, nil
				case "Fn::And":
					res = res && b
				case "Fn::Or":
					res = res || b
				}
			}
			return res, nil
		}
		return false, s.errorf("%s is not a condition function", fn)
	}
	return false, nil
}

func scalarString(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case int:
		return strconv.Itoa(x), true
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func toFloat(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case float64:
		return x, !math.IsNaN(x) && !math.IsInf(x, 0)
	case string:
		f, ok := parseNumber([]byte(strings.TrimSpace(x)))
		return f, ok
	}
	return 0, false
}

func toInt(v any) (int, bool) {
	f, ok := toFloat(v)
	if !ok || f != math.Trunc(f) || math.Abs(f) > 1e9 {
		return 0, false
	}
	return int(f), true
}

// props reads the resolved properties of one resource.
type props struct {
	t   *template
	id  string
	raw map[string]any
}

func (p props) site(name string) site { return site{p.id, name} }

func (p props) get(name string) (any, bool, error) {
	raw, ok := p.raw[name]
	if !ok {
		return nil, false, nil
	}
	v, err := p.t.resolve(p.site(name), raw, 0)
	if err != nil {
		return nil, false, err
	}
	if _, none := v.(noValue); none {
		return nil, false, nil
	}
	return v, true, nil
}

func (p props) str(name string) (string, error) {
	v, ok, err := p.get(name)
	if err != nil || !ok {
		return "", err
	}
	s, ok := scalarString(v)
	if !ok {
		return "", p.site(name).errorf("not a string")
	}
	return s, nil
}

func (p props) num(name string) (float64, bool, error) {
	v, ok, err := p.get(name)
	if err != nil || !ok {
		return 0, false, err
	}
	f, ok := toFloat(v)
	if !ok {
		return 0, false, p.site(name).errorf("%v is not a number", v)
	}
	return f, true, nil
}

func (p props) integer(name string) (int, error) {
	v, ok, err := p.get(name)
	if err != nil || !ok {
		return 0, err
	}
	i, ok := toInt(v)
	if !ok {
		return 0, p.site(name).errorf("%v is not an integer", v)
	}
	return i, nil
}

func (p props) strList(name string) ([]string, error) {
	v, ok, err := p.get(name)
	if err != nil || !ok {
		return nil, err
	}
	l, ok := v.([]any)
	if !ok {
		return nil, p.site(name).errorf("not a list")
	}
	out := make([]string, 0, len(l))
	for i, e := range l {
		s, ok := scalarString(e)
		if !ok {
			return nil, p.site(name).errorf("element %d is not a string", i)
		}
		out = append(out, s)
	}
	return out, nil
}

func (t *template) convert() (*Config, error) {
	ids := make([]string, 0, len(t.resources))
	for id := range t.resources {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	cfg := &Config{}
	var errs []error
	var alarms []Alarm
	topicKey := map[string]string{} // logical id → action string
	for _, id := range ids {
		res, ok := t.resources[id].(map[string]any)
		if !ok {
			errs = append(errs, fmt.Errorf("resource %s is not a mapping", id))
			continue
		}
		if c, ok := res["Condition"].(string); ok {
			on, err := t.condition(site{id, "Condition"}, c, 0)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if !on {
				cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("resource %s skipped: condition %s is false", id, c))
				continue
			}
		}
		raw, _ := res["Properties"].(map[string]any)
		p := props{t: t, id: id, raw: raw}
		var err error
		switch res["Type"] {
		case "AWS::Logs::MetricFilter":
			var fs []MetricFilter
			if fs, err = t.metricFilter(p); err == nil {
				cfg.MetricFilters = append(cfg.MetricFilters, fs...)
			}
		case "AWS::CloudWatch::Alarm":
			var a *Alarm
			var warn string
			if a, warn, err = t.alarm(p); err == nil {
				if a != nil {
					alarms = append(alarms, *a)
				} else {
					cfg.Warnings = append(cfg.Warnings, warn)
				}
			}
		case "AWS::SNS::Topic":
			err = t.topic(p, cfg, topicKey)
		}
		if err != nil {
			errs = append(errs, err)
		}
	}
	// Subscriptions declared as their own resources.
	for _, id := range ids {
		res, _ := t.resources[id].(map[string]any)
		if res["Type"] != "AWS::SNS::Subscription" {
			continue
		}
		raw, _ := res["Properties"].(map[string]any)
		p := props{t: t, id: id, raw: raw}
		arn, err1 := p.str("TopicArn")
		proto, err2 := p.str("Protocol")
		ep, err3 := p.str("Endpoint")
		if err := errors.Join(err1, err2, err3); err != nil {
			errs = append(errs, err)
			continue
		}
		if tp, ok := cfg.Topics[arn]; ok {
			tp.Subscriptions = append(tp.Subscriptions, Subscription{Protocol: proto, Endpoint: ep})
			cfg.Topics[arn] = tp
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	// Keep alarms whose metric an imported filter publishes.
	published := map[[2]string]bool{}
	for _, f := range cfg.MetricFilters {
		published[[2]string{f.Namespace, f.MetricName}] = true
	}
	for _, a := range alarms {
		if !published[[2]string{a.Namespace, a.MetricName}] {
			cfg.Warnings = append(cfg.Warnings, fmt.Sprintf("alarm %s skipped: no metric filter in the template publishes %s/%s", a.Name, a.Namespace, a.MetricName))
			continue
		}
		cfg.Alarms = append(cfg.Alarms, a)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("imported configuration is not valid: %w", err)
	}
	return cfg, nil
}

func (t *template) metricFilter(p props) ([]MetricFilter, error) {
	name, err := p.str("FilterName")
	if err != nil {
		return nil, err
	}
	if name == "" {
		name = p.id
	}
	pattern, err := p.str("FilterPattern")
	if err != nil {
		return nil, err
	}
	if _, ok := p.raw["FilterPattern"]; !ok {
		return nil, p.site("FilterPattern").errorf("missing")
	}
	logGroup, err := p.str("LogGroupName")
	if err != nil {
		return nil, err
	}
	v, ok, err := p.get("MetricTransformations")
	if err != nil {
		return nil, err
	}
	list, isList := v.([]any)
	if !ok || !isList || len(list) == 0 {
		return nil, p.site("MetricTransformations").errorf("a list of one metric transformation is required")
	}
	var out []MetricFilter
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return nil, p.site("MetricTransformations").errorf("element %d is not a mapping", i)
		}
		tp := props{t: t, id: p.id, raw: m}
		mf := MetricFilter{Name: name, Pattern: pattern, LogGroup: logGroup}
		if len(list) > 1 {
			mf.Name = fmt.Sprintf("%s-%d", name, i+1)
		}
		var err1, err2, err3, err4 error
		mf.MetricName, err1 = tp.str("MetricName")
		mf.Namespace, err2 = tp.str("MetricNamespace")
		mf.Value, err3 = tp.str("MetricValue")
		mf.Unit, err4 = tp.str("Unit")
		if err := errors.Join(err1, err2, err3, err4); err != nil {
			return nil, fmt.Errorf("in MetricTransformations: %w", err)
		}
		if mf.Unit == "None" {
			mf.Unit = ""
		}
		if d, ok, err := tp.num("DefaultValue"); err != nil {
			return nil, fmt.Errorf("in MetricTransformations: %w", err)
		} else if ok {
			mf.DefaultValue = &d
		}
		dv, ok, err := tp.get("Dimensions")
		if err != nil {
			return nil, fmt.Errorf("in MetricTransformations: %w", err)
		}
		if ok {
			dl, _ := dv.([]any)
			mf.Dimensions = map[string]string{}
			for _, d := range dl {
				dm, _ := d.(map[string]any)
				k, ok1 := scalarString(dm["Key"])
				val, ok2 := scalarString(dm["Value"])
				if !ok1 || !ok2 {
					return nil, p.site("MetricTransformations.Dimensions").errorf("each dimension needs Key and Value strings")
				}
				mf.Dimensions[k] = val
			}
		}
		if err := mf.Validate(); err != nil {
			return nil, fmt.Errorf("resource %s: %w", p.id, err)
		}
		out = append(out, mf)
	}
	return out, nil
}

func (t *template) alarm(p props) (*Alarm, string, error) {
	if _, ok := p.raw["Metrics"]; ok {
		return nil, fmt.Sprintf("alarm %s skipped: metric math alarms (Metrics) are not supported", p.id), nil
	}
	a := &Alarm{}
	var errs []error
	str := func(dst *string, name string) {
		s, err := p.str(name)
		errs = append(errs, err)
		*dst = s
	}
	integer := func(dst *int, name string) {
		i, err := p.integer(name)
		errs = append(errs, err)
		*dst = i
	}
	list := func(dst *[]string, name string) {
		l, err := p.strList(name)
		errs = append(errs, err)
		*dst = l
	}
	str(&a.Name, "AlarmName")
	str(&a.Description, "AlarmDescription")
	str(&a.Namespace, "Namespace")
	str(&a.MetricName, "MetricName")
	str(&a.Statistic, "Statistic")
	str(&a.ExtendedStatistic, "ExtendedStatistic")
	str(&a.ComparisonOperator, "ComparisonOperator")
	str(&a.TreatMissingData, "TreatMissingData")
	str(&a.EvaluateLowSampleCountPercentile, "EvaluateLowSampleCountPercentile")
	integer(&a.Period, "Period")
	integer(&a.EvaluationPeriods, "EvaluationPeriods")
	integer(&a.DatapointsToAlarm, "DatapointsToAlarm")
	list(&a.AlarmActions, "AlarmActions")
	list(&a.OKActions, "OKActions")
	list(&a.InsufficientDataActions, "InsufficientDataActions")
	th, ok, err := p.num("Threshold")
	errs = append(errs, err)
	if err == nil && !ok {
		errs = append(errs, p.site("Threshold").errorf("missing (only static thresholds are supported)"))
	}
	a.Threshold = th
	if v, ok, err := p.get("ActionsEnabled"); err != nil {
		errs = append(errs, err)
	} else if ok {
		b, isBool := v.(bool)
		if s, isStr := v.(string); isStr {
			b, isBool = s == "true", s == "true" || s == "false"
		}
		if !isBool {
			errs = append(errs, p.site("ActionsEnabled").errorf("not a boolean"))
		}
		a.ActionsEnabled = &b
	}
	dv, ok, err := p.get("Dimensions")
	errs = append(errs, err)
	if ok {
		dl, _ := dv.([]any)
		a.Dimensions = map[string]string{}
		for _, d := range dl {
			dm, _ := d.(map[string]any)
			k, ok1 := scalarString(dm["Name"])
			val, ok2 := scalarString(dm["Value"])
			if !ok1 || !ok2 {
				errs = append(errs, p.site("Dimensions").errorf("each dimension needs Name and Value strings"))
				break
			}
			a.Dimensions[k] = val
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, "", err
	}
	if a.Name == "" {
		a.Name = p.id
	}
	if a.TreatMissingData == MissingMissing {
		a.TreatMissingData = ""
	}
	if err := a.Validate(); err != nil {
		return nil, "", fmt.Errorf("resource %s: %w", p.id, err)
	}
	return a, "", nil
}

func (t *template) topic(p props, cfg *Config, keys map[string]string) error {
	key, err := t.resourceRef(p.site("(Ref)"), p.id, 0)
	if err != nil {
		return err
	}
	ks, _ := key.(string)
	name, err := p.str("TopicName")
	if err != nil {
		return err
	}
	tp := Topic{Name: name}
	v, ok, err := p.get("Subscription")
	if err != nil {
		return err
	}
	if ok {
		l, _ := v.([]any)
		for _, e := range l {
			m, _ := e.(map[string]any)
			proto, ok1 := scalarString(m["Protocol"])
			ep, ok2 := scalarString(m["Endpoint"])
			if !ok1 || !ok2 {
				return p.site("Subscription").errorf("each subscription needs Protocol and Endpoint strings")
			}
			tp.Subscriptions = append(tp.Subscriptions, Subscription{Protocol: proto, Endpoint: ep})
		}
	}
	if cfg.Topics == nil {
		cfg.Topics = map[string]Topic{}
	}
	cfg.Topics[ks] = tp
	keys[p.id] = ks
	return nil
}
