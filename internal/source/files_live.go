package source

import (
	"context"
	"errors"
)

// FilesConfig is the configuration of a files source.
type FilesConfig struct {
	// Paths are files, directories (walked) and globs, followed as they
	// grow, rotate and appear.
	Paths []string `yaml:"paths,flow"`
}

// NewFilesLive builds a files source.
func NewFilesLive(cfg LiveConfig, deps LiveDeps) (Live, error) {
	var fc FilesConfig
	if err := cfg.Decode(&fc); err != nil {
		return nil, err
	}
	if len(fc.Paths) == 0 {
		return nil, errors.New("sources." + cfg.Name + ": a files source needs paths")
	}
	return &filesLive{name: cfg.Name, cfg: fc, deps: deps}, nil
}

type filesLive struct {
	name string
	cfg  FilesConfig
	deps LiveDeps
}

func (f *filesLive) Run(ctx context.Context, from []Position, emit Emit) error {
	<-ctx.Done()
	return nil
}

func (f *filesLive) Commit(context.Context, []Position) error { return nil }

func (f *filesLive) Status() Status { return Status{Name: f.name, Type: "files"} }
