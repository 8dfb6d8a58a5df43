package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDocsExamples runs every "$ netguard ..." command of the docs' code
// blocks that reads docs/examples, from the repository root, and compares
// its output with the lines under it (up to the next "$ " line or the end of
// the block).
func TestDocsExamples(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	ran := 0
	for _, doc := range []string{"annotations.md", "cli-check.md", "diff.md", "generate.md"} {
		text, err := os.ReadFile(filepath.Join(root, "docs", doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, ex := range docExamples(string(text)) {
			if !strings.Contains(ex.command, "docs/examples/") {
				continue // an illustration on paths that are not in the repository
			}
			ran++
			t.Run(doc+": "+ex.command, func(t *testing.T) {
				t.Chdir(root)
				var out, errOut bytes.Buffer
				run(strings.Fields(ex.command), ioStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut})
				if got := strings.TrimRight(out.String(), "\n"); got != ex.output {
					t.Errorf("docs/%s shows:\n%s\nthe command prints:\n%s\nstderr: %s", doc, ex.output, got, errOut.String())
				}
			})
		}
	}
	if ran < 6 {
		t.Errorf("ran %d examples; the docs lost theirs", ran)
	}
}

type docExample struct {
	command string // the arguments after "$ netguard "
	output  string
}

func docExamples(md string) []docExample {
	var (
		out     []docExample
		inBlock bool
		cur     *docExample
		lines   []string
	)
	flush := func() {
		if cur != nil {
			cur.output = strings.TrimRight(strings.Join(lines, "\n"), "\n")
			out = append(out, *cur)
		}
		cur, lines = nil, nil
	}
	for _, l := range strings.Split(md, "\n") {
		switch {
		case strings.HasPrefix(l, "```"):
			flush()
			inBlock = !inBlock
		case inBlock && strings.HasPrefix(l, "$ "):
			flush()
			if c, ok := strings.CutPrefix(l, "$ netguard "); ok {
				cur = &docExample{command: c}
			}
		case cur != nil:
			lines = append(lines, l)
		}
	}
	return out
}
