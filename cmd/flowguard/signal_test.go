package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestInterruptStopsCleanly: Ctrl-C during a long query (reading standard
// input that never ends) stops it at once with exit code 130, and the CPU
// profile asked for is written.
func TestInterruptStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	bin := flowguardBinary(t)
	for _, args := range [][]string{
		{"query", "stats count() by srcaddr", "-"},
		{"detect", "--no-db", "-"},
	} {
		t.Run(args[0], func(t *testing.T) {
			prof := filepath.Join(t.TempDir(), "cpu.prof")
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			var stderr bytes.Buffer
			cmd := exec.Command(bin, append([]string{"--cpuprofile", prof}, args...)...)
			cmd.Stdin, cmd.Stderr = r, &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			r.Close()
			w.Write([]byte("2 123456789012 eni-1 198.51.100.7 10.0.0.5 4444 22 6 1 40 1700000000 1700000060 REJECT OK\n"))
			// The profile file is created after the signal handler is
			// installed: once it exists, Ctrl-C reaches the command and not
			// the default handler, however slow the machine is.
			for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				if _, err := os.Stat(prof); err == nil {
					break
				}
				if time.Now().After(deadline) {
					cmd.Process.Kill()
					t.Fatalf("%s did not start within 30s", args[0])
				}
			}
			time.Sleep(200 * time.Millisecond)
			if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case err = <-done:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("%s did not stop within 10s of SIGINT", args[0])
			}
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 130 || !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("%s after SIGINT: %v, %q; want exit code 130 and 'interrupted'", args[0], err, stderr.String())
			}
			if info, err := os.Stat(prof); err != nil {
				t.Errorf("CPU profile: %v; want it written", err)
			} else if info.Size() == 0 {
				t.Error("CPU profile is empty; want it written")
			}
		})
	}
}
