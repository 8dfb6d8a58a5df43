// Package api holds netguard's API types: the CRDs (v1alpha1) and the
// configuration file (config/v1alpha1). This test keeps them types packages.
package api

import (
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// Types packages import nothing of ours but other types packages, as Pod
// Security Admission's admission/api imports no policy code: whoever needs
// the engine's view of an object converts it on its own side (webhook's
// ProfileToRules), and the engine stays free to change. Test files too: a
// test here that needs rules belongs beside the conversion.
func TestAPIImportsNoEngine(t *testing.T) {
	const module = "github.com/netguard/netguard/"
	fset := token.NewFileSet()
	n := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		n++
		for _, imp := range f.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, module) && !strings.HasPrefix(p, module+"api/") {
				t.Errorf("api/%s imports %s: api/ holds types only; convert or validate on the side that uses the engine", filepath.ToSlash(path), p)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n < 5 {
		t.Fatalf("read %d Go files under api/; the walk is looking in the wrong place", n)
	}
}
