# parse.awk: the parse shape of bench/compare.sh in awk,
#
#   parse @message /^\S+ \S+ (?<eni>\S+) \S+ \S+ \S+ (?<port>\d+) /
#   | stats count() as n by port
#
# with awk's own regular expression engine on the whole line. Fields are
# separated by single spaces, so the port captured is field 7. Lines that
# do not match count under the empty port. Prints "port n", in no
# particular order.
{
	if (match($0, /^[^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ [^ ]+ [0-9]+ /))
		c[$7]++
	else
		c[""]++
}
END {
	for (p in c)
		print p, c[p]
}
