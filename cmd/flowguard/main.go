// Command flowguard finds attacks in AWS VPC Flow Logs and answers them.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/spf13/cobra"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line args and returns the process exit code.
func run(args []string) int {
	root := newRootCmd()
	root.SetArgs(args)
	if err := root.Execute(); err != nil {
		if ee, ok := err.(exitError); ok {
			if ee.msg != "" {
				fmt.Fprintln(os.Stderr, "flowguard:", ee.msg)
			}
			return ee.code
		}
		fmt.Fprintln(os.Stderr, "flowguard:", err)
		return 1
	}
	return 0
}

// exitError ends the program with a given exit code.
type exitError struct {
	code int
	msg  string
}

func (e exitError) Error() string { return e.msg }

func newRootCmd() *cobra.Command {
	var cpuProfile string
	var stopProfile func()
	root := &cobra.Command{
		Use:           "flowguard",
		Short:         "Find attacks in AWS VPC Flow Logs and answer them",
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(*cobra.Command, []string) error {
			if cpuProfile == "" {
				return nil
			}
			f, err := os.Create(cpuProfile)
			if err != nil {
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			if err := pprof.StartCPUProfile(f); err != nil {
				f.Close()
				return fmt.Errorf("--cpuprofile: %w", err)
			}
			stopProfile = func() { pprof.StopCPUProfile(); f.Close() }
			return nil
		},
		PersistentPostRun: func(*cobra.Command, []string) {
			if stopProfile != nil {
				stopProfile()
			}
		},
	}
	root.PersistentFlags().StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file (for performance work)")
	root.AddCommand(
		newParseCmd(),
		newQueryCmd(),
		newGenCmd(),
		newDemoCmd(),
		newFindingsCmd(),
		newAlarmsCmd(),
		newDetectCmd(),
		newConfigCmd(),
		newBlocksCmd(),
		newIAMPolicyCmd(),
		newAuditCmd(),
	)
	return root
}
