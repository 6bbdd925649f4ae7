package dashboard

import (
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"testing"
)

// TestCSVCellNeutralisesFormulas runs app.js's csvCell in Node: every value a
// spreadsheet could read as a formula gets a leading apostrophe. (The e2e
// test checks the download in a browser with one plain case.)
func TestCSVCellNeutralisesFormulas(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node is not installed")
	}
	js, err := os.ReadFile("assets/app.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)\n(?:  const formulaStart = [^\n]*\n)?  function csvCell\(v\) \{.*?\n  \}\n`).Find(js)
	if m == nil {
		t.Fatal("csvCell not found in app.js")
	}
	formulas := []string{
		"=1+1", "+1", "-1", "@SUM(A1)", "\t=1", "\r=1",
		" =HYPERLINK(\"x\")", "\u00a0=1", "\ufeff=1", "\u200b=1", "\u202e=1", " \t +1",
		"\uff1dHYPERLINK(\"x\")", "\uff0b1", "\uff0d1", "\uff20SUM(A1)", "\ufe66 1", "\u22121",
	}
	plain := []string{"/pricing", "google.com", "a=b", "hello world", "", "1-2"}
	cases := append(append([]string{}, formulas...), plain...)
	in, _ := json.Marshal(cases)
	out, err := exec.Command(node, "-e", string(m)+"\nprocess.stdout.write(JSON.stringify("+string(in)+".map(csvCell)));").Output()
	if err != nil {
		t.Fatalf("node: %v", err)
	}
	var got []string
	if err := json.Unmarshal(out, &got); err != nil || len(got) != len(cases) {
		t.Fatalf("node printed %q: %v", out, err)
	}
	for i, c := range cases {
		neutral := len(got[i]) > 0 && (got[i][0] == '\'' || got[i][0] == '"' && len(got[i]) > 1 && got[i][1] == '\'')
		if want := i < len(formulas); neutral != want {
			t.Errorf("csvCell(%q) = %q, neutralised %v, want %v", c, got[i], neutral, want)
		}
	}
}
