// Command flowguard finds attacks in AWS VPC Flow Logs and answers them.
package main

import (
	"fmt"
	"os"

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
	root := &cobra.Command{
		Use:           "flowguard",
		Short:         "Find attacks in AWS VPC Flow Logs and answer them",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newParseCmd(),
		newQueryCmd(),
		newGenCmd(),
		newDemoCmd(),
	)
	return root
}
