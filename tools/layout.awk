# tools/layout.awk: turns tools/hot-sections.list into the GNU ld script fragment the static
# handlers are linked with (-Wl,-T): the listed code, constants and read-only data each in one
# output section (.text.hot, .rodata.hot, .data.rel.ro.hot) that INSERT places next to the
# default script's own, in the list's order. The default script still does everything else.
# It must never name a file or section that is not in the list: a pattern that matches
# nothing (a member another OpenSSL version does not have) is ignored by ld, so the list can
# never break a link, only place less.
/^#/ || NF < 2 { next }
{
	pat = "    *" $1 "(" $2 ")"
	if ($2 ~ /^\.text/)
		text[nt++] = pat
	else if ($2 ~ /^\.rodata/)
		ro[nr++] = pat
	else if ($2 ~ /^\.data\.rel\.ro/)
		relro[nd++] = pat
}
function emit(name, list, n, where) {
	if (n == 0)
		return
	print "SECTIONS\n{\n  " name " :\n  {"
	for (i = 0; i < n; i++)
		print list[i]
	print "  }\n}\n" where ";"
}
END {
	print "/* made by tools/layout.awk from tools/hot-sections.list: do not edit */"
	emit(".text.hot", text, nt, "INSERT BEFORE .text")
	emit(".rodata.hot", ro, nr, "INSERT AFTER .rodata")
	emit(".data.rel.ro.hot", relro, nd, "INSERT AFTER .data.rel.ro")
}
