package sgaudit

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzReadInventory: any bytes given as groups, interfaces or prefix lists
// give an inventory or an error, never a panic.
func FuzzReadInventory(f *testing.F) {
	for _, name := range []string{"groups.json", "interfaces.json", "prefix-lists.json"} {
		b, err := os.ReadFile(filepath.Join("testdata/account", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"SecurityGroups":[{"GroupId":"sg-1","IpPermissions":[{"IpProtocol":"tcp","FromPort":5,"ToPort":1}]}]}`))
	f.Add([]byte(`{"SecurityGroups":[{"GroupId":"sg-1","IpPermissions":[{"IpProtocol":"999"}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "in.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		gs, gerr := ReadGroups(p)
		ifs, ierr := ReadInterfaces(p)
		pls, perr := ReadPrefixLists(p)
		if gerr == nil && ierr == nil && perr == nil {
			a := New(&Inventory{Groups: gs, Interfaces: ifs, PrefixLists: pls}, Options{})
			a.Report()
		}
	})
}
