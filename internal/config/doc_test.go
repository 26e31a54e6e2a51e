package config

import (
	"bytes"
	"fmt"
	"go/parser"
	"go/token"
	"regexp"
	"strings"
	"testing"
)

// TestSettingDescriptors checks that every setting has all its names, a
// description and a metavar, that the names follow the naming rule and are
// unique, and that no env name looks like a Kubernetes service link.
func TestSettingDescriptors(t *testing.T) {
	keyRE := regexp.MustCompile(`^[a-z][a-z0-9]*(_[a-z0-9]+)*$`)
	seen := map[string]bool{}
	for _, s := range Settings() {
		if !keyRE.MatchString(s.Key) {
			t.Errorf("YAML key %q is not snake_case", s.Key)
		}
		if want := "--" + strings.ReplaceAll(s.Key, "_", "-"); s.Flag != want {
			t.Errorf("%s: flag %q, want %q", s.Key, s.Flag, want)
		}
		if want := "AXON_" + strings.ToUpper(s.Key); s.Env != want {
			t.Errorf("%s: env %q, want %q", s.Key, s.Env, want)
		}
		if strings.TrimSpace(s.Usage) == "" || !strings.HasSuffix(s.Usage, ".") {
			t.Errorf("%s: usage %q is empty or not a sentence", s.Key, s.Usage)
		}
		if s.Default == "" || strings.ContainsAny(s.Default, " \t") {
			t.Errorf("%s: documented default %q must be one non-empty token", s.Key, s.Default)
		}
		if serviceLink.MatchString(s.Env) {
			t.Errorf("%s: env %s would be ignored as a Kubernetes service link", s.Key, s.Env)
		}
		for _, n := range []string{s.Key, s.Flag, s.Env} {
			if seen[n] {
				t.Errorf("name %q is used twice", n)
			}
			seen[n] = true
		}
	}
	for _, s := range settings {
		if s.metavar == "" || s.get == nil || s.set == nil {
			t.Errorf("%s: missing metavar, get or set", s.key)
		}
		if s.derived != nil && (s.def != "" || s.defDoc == "") {
			t.Errorf("%s: a derived default is documented by defDoc only", s.key)
		}
	}
}

// docRow is one setting as the table in doc.go lists it.
type docRow struct {
	flag, env, key, def string
	meaning             string // the description lines, joined by spaces
}

// TestDocTable checks that the table in the package comment lists every
// setting, in order, with the flag, env, key, default and description that
// the code has. On failure it prints the table to paste into doc.go.
func TestDocTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "doc.go", nil, parser.ParseComments|parser.PackageClauseOnly)
	if err != nil {
		t.Fatal(err)
	}
	if f.Doc == nil {
		t.Fatal("doc.go has no package comment")
	}
	rows := parseDocTable(f.Doc.Text())
	var want []docRow
	for _, s := range Settings() {
		want = append(want, docRow{s.Flag, s.Env, s.Key, s.Default, strings.Join(strings.Fields(s.Usage), " ")})
	}
	ok := len(rows) == len(want)
	for i := 0; ok && i < len(rows); i++ {
		if rows[i] != want[i] {
			t.Errorf("doc.go row %d:\n got %+v\nwant %+v", i+1, rows[i], want[i])
			ok = false
		}
	}
	if !ok {
		t.Errorf("doc.go has %d settings in its table, the code %d; the table should read:\n%s",
			len(rows), len(want), renderDocTable())
	}
}

// parseDocTable finds the table rows in the package comment: a line that
// starts with "--" after the tab of a code block, followed by more deeply
// indented lines of description.
func parseDocTable(doc string) []docRow {
	var rows []docRow
	for line := range strings.Lines(doc) {
		line = strings.TrimRight(line, "\n")
		switch {
		case strings.HasPrefix(line, "\t--"):
			f := strings.Fields(line)
			if len(f) != 4 {
				rows = append(rows, docRow{flag: line}) // malformed: reported as a mismatch
				continue
			}
			rows = append(rows, docRow{flag: f[0], env: f[1], key: f[2], def: f[3]})
		case strings.HasPrefix(line, "\t ") && len(rows) > 0 && strings.TrimSpace(line) != "":
			r := &rows[len(rows)-1]
			r.meaning = strings.TrimSpace(r.meaning + " " + strings.TrimSpace(line))
		}
	}
	return rows
}

// renderDocTable renders the settings table as doc.go should hold it.
func renderDocTable() string {
	all := Settings()
	header := docRow{flag: "Flag", env: "Environment", key: "YAML key", def: "Default"}
	wf, we, wk := len(header.flag), len(header.env), len(header.key)
	for _, s := range all {
		wf, we, wk = max(wf, len(s.Flag)), max(we, len(s.Env)), max(wk, len(s.Key))
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "//\t%-*s  %-*s  %-*s  %s\n//\n", wf, header.flag, we, header.env, wk, header.key, header.def)
	for i, s := range all {
		if i > 0 {
			b.WriteString("//\n")
		}
		fmt.Fprintf(&b, "//\t%-*s  %-*s  %-*s  %s\n", wf, s.Flag, we, s.Env, wk, s.Key, s.Default)
		for _, line := range wrap(s.Usage, 72) {
			fmt.Fprintf(&b, "//\t    %s\n", line)
		}
	}
	return b.String()
}

// TestPrintDefaults checks that the usage text documents every setting
// with its flag, env, YAML key, default and every word of its meaning.
func TestPrintDefaults(t *testing.T) {
	var b strings.Builder
	if err := PrintDefaults(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	flat := strings.Join(strings.Fields(out), " ")
	for _, s := range Settings() {
		for _, want := range []string{s.Flag + " ", s.Env, "Default: " + s.Default, strings.Join(strings.Fields(s.Usage), " ")} {
			if !strings.Contains(flat, want) {
				t.Errorf("usage text lacks %q", want)
			}
		}
		if s.Key != keyConfig && !strings.Contains(out, "YAML "+s.Key+"\n") {
			t.Errorf("usage text lacks YAML key %s", s.Key)
		}
	}
}
