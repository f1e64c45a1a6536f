package flowlog

import (
	"os"
	"sync/atomic"
	"syscall"

	"golang.org/x/sys/unix"
)

// minMapSize is the smallest file worth mapping instead of reading.
const minMapSize = 4 << 20

// mapping is a file mapped into memory, copy-on-write (the decoder folds
// runs of spaces in place), and unmapped when the last block that points
// into it is released.
type mapping struct {
	data []byte
	refs atomic.Int64
}

// mapFile maps a regular file of at least minMapSize bytes, or returns nil
// when the file should be read the ordinary way.
func mapFile(f *os.File) *mapping {
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() || st.Size() < minMapSize || int64(int(st.Size())) != st.Size() {
		return nil
	}
	data, err := syscall.Mmap(int(f.Fd()), 0, int(st.Size()), syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_PRIVATE)
	if err != nil {
		return nil
	}
	_ = unix.Madvise(data, unix.MADV_SEQUENTIAL) // syscall has no Madvise on darwin
	m := &mapping{data: data}
	m.refs.Store(1)
	return m
}

// release drops a reference; the last one unmaps the file.
func (m *mapping) release() {
	if m.refs.Add(-1) == 0 {
		syscall.Munmap(m.data)
		m.data = nil
	}
}
