package cloudtrail

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// Flatten turns one CloudTrail record into the fields a Logs Insights
// query names over CloudTrail: nested objects with dots
// (userIdentity.type, requestParameters.groupId), array elements by index
// (resources.0.ARN); numbers stay json.Number, null is left out. It is
// the record side of running the query engine over CloudTrail.
func Flatten(raw []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("record: %w", err)
	}
	out := map[string]any{}
	flatten("", v, out)
	return out, nil
}

func flatten(prefix string, v any, out map[string]any) {
	join := func(k string) string {
		if prefix == "" {
			return k
		}
		return prefix + "." + k
	}
	switch x := v.(type) {
	case map[string]any:
		for k, y := range x {
			flatten(join(k), y, out)
		}
	case []any:
		for i, y := range x {
			flatten(join(strconv.Itoa(i)), y, out)
		}
	case nil:
	default:
		out[prefix] = x
	}
}
