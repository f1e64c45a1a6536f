# pairs.awk: stats sum(bytes) as b by srcAddr, dstAddr in awk, for
# bench/compare.sh (shapes pairs-all and, piped through sort and head,
# pairs-top).
#
# Input is VPC flow log text in the default (version 2) format without a
# header line: srcaddr is field 4, dstaddr field 5, bytes field 10; "-" is
# absent. Prints "srcaddr dstaddr sum" for every pair, absent values as the
# empty string (a pair with no bytes has no sum), in no particular order.
{
	k = $4 " " $5
	n[k]++
	if ($10 != "-") {
		s[k] += $10
		h[k] = 1
	}
}
END {
	for (k in n) {
		split(k, a, " ")
		printf "%s %s %s\n", (a[1] == "-" ? "" : a[1]), (a[2] == "-" ? "" : a[2]), ((k in h) ? sprintf("%.0f", s[k]) : "")
	}
}
