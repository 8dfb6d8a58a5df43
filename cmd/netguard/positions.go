package main

// Positions map a field path of a violation ("spec.ingress[0].from[1].ipBlock")
// to the line and column of that field in the file it was read from, so that
// check's text, JSON and SARIF output point an editor or a pull-request review
// at the offending line. The document's text is parsed again with a YAML node
// parser (JSON is YAML) only when a position is asked for.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"

	yaml "go.yaml.in/yaml/v3"

	"github.com/netguard/netguard/rules"
)

// docText is the text of one document and where it starts in its file.
type docText struct {
	text []byte
	// line and col (1-based) are where text starts in the file; col only
	// applies to text's first line (a JSON value after another on one line).
	line, col int

	once sync.Once
	root *yaml.Node // the document's top-level value; nil when unparsable
}

// position is a place in a file. Zero Line means unknown.
type position struct {
	Line   int `json:"line,omitempty"`
	Column int `json:"column,omitempty"`
}

func (d *docText) node() *yaml.Node {
	if d == nil {
		return nil
	}
	d.once.Do(func() {
		var doc yaml.Node
		if err := yaml.Unmarshal(d.text, &doc); err != nil || len(doc.Content) == 0 {
			return
		}
		root := doc.Content[0]
		shift(root, d.line-1, d.col-1)
		d.root = root
	})
	return d.root
}

// shift moves a node tree parsed on its own to where it is in the file.
func shift(n *yaml.Node, lines, cols int) {
	if n.Line == 1 {
		n.Column += cols
	}
	n.Line += lines
	for _, c := range n.Content {
		shift(c, lines, cols)
	}
}

// fieldPosition finds path in the object m was decoded from: the key of the
// last field found, or the item of the last list index found. A path that
// goes further than the document (a field left out, "spec.policyTypes") ends
// at its deepest part that is there. The empty path is the object's
// metadata.name, or its first line.
func (m manifest) fieldPosition(path string) position {
	n := m.doc.node()
	if n == nil {
		return position{}
	}
	if m.Item > 0 {
		items := mappingValue(n, "items")
		if items == nil || items.Kind != yaml.SequenceNode || m.Item > len(items.Content) {
			return position{}
		}
		n = items.Content[m.Item-1]
	}
	at := position{Line: n.Line, Column: n.Column}
	if path == "" {
		if md := mappingValue(n, "metadata"); md != nil {
			if k, _ := mappingKey(md, "name"); k != nil {
				return position{Line: k.Line, Column: k.Column}
			}
		}
		return at
	}
	for _, seg := range splitFieldPath(path) {
		switch {
		case n.Kind == yaml.MappingNode && !seg.isIndex:
			k, v := mappingKey(n, seg.name)
			if k == nil {
				return at
			}
			at, n = position{Line: k.Line, Column: k.Column}, v
		case n.Kind == yaml.SequenceNode && seg.isIndex && seg.index < len(n.Content):
			n = n.Content[seg.index]
			at = position{Line: n.Line, Column: n.Column}
		default:
			return at
		}
	}
	return at
}

func mappingKey(n *yaml.Node, key string) (k, v *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			return n.Content[i], n.Content[i+1]
		}
	}
	return nil, nil
}

func mappingValue(n *yaml.Node, key string) *yaml.Node {
	_, v := mappingKey(n, key)
	return v
}

type pathSegment struct {
	name    string
	index   int
	isIndex bool
}

// splitFieldPath reads the paths of k8s.io/apimachinery's field.Path:
// "spec.ingress[0].from[1]" and "metadata.annotations[netguard.io/depends-on]",
// where a bracket holds an index or a map key (which may contain dots).
func splitFieldPath(p string) []pathSegment {
	var out []pathSegment
	for len(p) > 0 {
		switch p[0] {
		case '.':
			p = p[1:]
		case '[':
			end := strings.IndexByte(p, ']')
			if end < 0 {
				return append(out, pathSegment{name: p[1:]})
			}
			inner := p[1:end]
			if i, err := strconv.Atoi(inner); err == nil {
				out = append(out, pathSegment{index: i, isIndex: true})
			} else {
				out = append(out, pathSegment{name: inner})
			}
			p = p[end+1:]
		default:
			end := strings.IndexAny(p, ".[")
			if end < 0 {
				end = len(p)
			}
			out = append(out, pathSegment{name: p[:end]})
			p = p[end:]
		}
	}
	return out
}

// lineCursor turns increasing offsets in one file into lines and columns
// without counting from the start each time.
type lineCursor struct {
	offset    int // bytes before offset are counted
	line      int // 1-based line at offset (0 before the first call)
	lineStart int // offset where that line starts
}

// at returns the 1-based line and column of offset, which must not be
// before the offset of the previous call.
func (c *lineCursor) at(data []byte, offset int) (int, int) {
	if c.line == 0 {
		c.line = 1
	}
	if offset > len(data) {
		offset = len(data)
	}
	for ; c.offset < offset; c.offset++ {
		if data[c.offset] == '\n' {
			c.line++
			c.lineStart = c.offset + 1
		}
	}
	return c.line, offset - c.lineStart + 1
}

// violationAt is a violation with its place in the file, as check -o json
// writes it.
type violationAt struct {
	rules.Violation
	position
}

// MarshalJSON adds line and column to each violation whose place is known.
func (r checkResult) MarshalJSON() ([]byte, error) {
	type plain checkResult
	if r.positions == nil { // not read from a file: audit
		return marshalNoEscape(plain(r))
	}
	vs := make([]violationAt, len(r.Violations))
	for i, v := range r.Violations {
		vs[i].Violation = v
		if i < len(r.positions) {
			vs[i].position = r.positions[i]
		}
	}
	return marshalNoEscape(struct {
		plain
		Violations []violationAt `json:"violations"`
	}{plain(r), vs})
}

// marshalNoEscape is json.Marshal without HTML escaping, as writeJSON
// encodes: "<stdin>" stays readable.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// locate sets the file and the place of each violation of the results that
// were read from ms.
func (r *checkReport) locate(ms []manifest) {
	byLocation := make(map[string]manifest, len(ms))
	for _, m := range ms {
		byLocation[m.Location()] = m
	}
	for i := range r.Results {
		res := &r.Results[i]
		m, ok := byLocation[res.Source]
		if !ok {
			continue
		}
		res.file = m.Source
		res.positions = make([]position, len(res.Violations))
		for j, v := range res.Violations {
			res.positions[j] = m.fieldPosition(v.Field)
		}
	}
}

// at is "file:line:column: " for a violation's text line, "" when unknown.
func (r checkResult) at(i int) string {
	if r.file == "" || i >= len(r.positions) || r.positions[i].Line == 0 {
		return ""
	}
	return fmt.Sprintf("%s:%d:%d: ", r.file, r.positions[i].Line, r.positions[i].Column)
}
