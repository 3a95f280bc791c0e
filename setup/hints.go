package main

import (
	"regexp"
	"strings"
)

// setupCommand matches a setup command named in a hint or a fix: "go run ./setup up",
// "setup down", "`go run ./setup doctor`".
var setupCommand = regexp.MustCompile(
	`((?:go run \./)?setup (?:up|down|status|check|doctor|graph|report|add-vm))\b`)

// withFile returns text with "-f FILE" after every setup command it names, when the lab came
// from a file (-f, $HYBRIDLAB_LAB or the record of the lab that is up): a hint without it
// would act on the default lab instead.
func (g *globals) withFile(text string) string {
	if g.labFile == "" || strings.Contains(text, "-f "+g.labFile) {
		return text
	}
	var b strings.Builder
	last := 0
	for _, m := range setupCommand.FindAllStringIndex(text, -1) {
		b.WriteString(text[last:m[1]])
		if !strings.HasPrefix(text[m[1]:], " -f ") {
			b.WriteString(" -f " + shellQuote(g.labFile))
		}
		last = m[1]
	}
	return b.String() + text[last:]
}

// shellQuote quotes a path for a shell when it needs it.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsAny(s, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
