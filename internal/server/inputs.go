package server

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/flowguard/flowguard/internal/flowlog"
)

// recentInputs returns the files the files sources follow that were
// modified since the given time: what queries and the dashboard's tables
// read. More than maxQueryBytes of them is an error that asks for a
// shorter period.
func (s *Server) recentInputs(since time.Time) ([]flowlog.Input, error) {
	var inputs []flowlog.Input
	var total int64
	for _, st := range s.b.Sources() {
		if st.Type != "files" {
			continue
		}
		for _, p := range st.Positions {
			info, err := os.Stat(p.Name)
			if err != nil || info.ModTime().Before(since) {
				continue
			}
			if total += info.Size(); total > maxQueryBytes {
				return nil, fmt.Errorf("the files modified since %s hold more than %d bytes: give a shorter since", since.Format(time.RFC3339), maxQueryBytes)
			}
			name := p.Name
			inputs = append(inputs, flowlog.Input{Name: name, Size: info.Size(), Open: func(context.Context) (io.ReadCloser, error) {
				f, err := os.Open(name)
				if err != nil {
					return nil, fmt.Errorf("cannot open input: %w", err)
				}
				return f, nil
			}})
		}
	}
	return inputs, nil
}
