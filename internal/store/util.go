package store

import "net/netip"

// addrText is an address as the indexed columns hold it ("" when absent).
func addrText(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.Unmap().String()
}
