package sgaudit

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/flowguard/flowguard/internal/awstest"
)

// TestAWSCLIJSON: what the AWS CLI itself prints for describe-security-groups
// and describe-network-interfaces (run against the wire-protocol EC2
// server) reads as --groups and --interfaces and gives the fixture's
// verdicts. Skipped without the aws command.
func TestAWSCLIJSON(t *testing.T) {
	awsCLI, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("no aws command")
	}
	srv, inv := serveAccount(t)
	dir := t.TempDir()
	run := func(file string, args ...string) string {
		t.Helper()
		cmd := exec.Command(awsCLI, append(args, "--endpoint-url", srv.URL, "--region", "us-east-1", "--output", "json")...)
		cmd.Env = append(os.Environ(), awstest.Env("AWS_PAGER=")...)
		out, err := cmd.Output()
		if err != nil {
			t.Skipf("aws %v: %v", args, err)
		}
		p := filepath.Join(dir, file)
		if err := os.WriteFile(p, out, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	groups := run("groups.json", "ec2", "describe-security-groups")
	ifaces := run("interfaces.json", "ec2", "describe-network-interfaces")
	cliInv, err := LoadFiles(groups, ifaces, "testdata/account/prefix-lists.json")
	if err != nil {
		t.Fatal(err)
	}
	got, want := verdicts(runAudit(t, cliInv, Options{})), verdicts(runAudit(t, inv, Options{}))
	if !reflect.DeepEqual(got, want) {
		t.Errorf("verdicts from the AWS CLI's JSON:\n%v\nfrom the fixture:\n%v", got, want)
	}
}
