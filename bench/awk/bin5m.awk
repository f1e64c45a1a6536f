# bin5m.awk: stats count() as n, sum(bytes) as b by bin(5m) as t in awk, for
# bench/compare.sh. @timestamp is the record's start (field 11), bytes field
# 10. Prints "YYYY-MM-DD HH:MM:SS.000 n b" (UTC, as Logs Insights prints
# bin()), in no particular order.

function two(n) { return (n < 10 ? "0" : "") n }

# stamp formats Unix seconds as a UTC date and time (days to a civil date
# as in Howard Hinnant's days_from_civil, inverted).
function stamp(t,    d, s, z, era, doe, yoe, y, doy, mp, day, m) {
	d = int(t / 86400)
	s = t - d * 86400
	z = d + 719468
	era = int(z / 146097)
	doe = z - era * 146097
	yoe = int((doe - int(doe / 1460) + int(doe / 36524) - int(doe / 146096)) / 365)
	y = yoe + era * 400
	doy = doe - (365 * yoe + int(yoe / 4) - int(yoe / 100))
	mp = int((5 * doy + 2) / 153)
	day = doy - int((153 * mp + 2) / 5) + 1
	m = mp < 10 ? mp + 3 : mp - 9
	if (m <= 2)
		y++
	return y "-" two(m) "-" two(day) " " two(int(s / 3600)) ":" two(int(s % 3600 / 60)) ":" two(s % 60) ".000"
}

{
	t = $11 - $11 % 300
	n[t]++
	if ($10 != "-") {
		b[t] += $10
		h[t] = 1
	}
}
END {
	for (t in n)
		printf "%s %d %s\n", stamp(t), n[t], ((t in h) ? sprintf("%.0f", b[t]) : "")
}
