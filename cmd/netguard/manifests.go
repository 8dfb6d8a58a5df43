package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
)

// stdinSource is the Source of manifests read from standard input ("-").
const stdinSource = "<stdin>"

// manifest is one Kubernetes object read from a file or stdin by the offline
// commands (check, generate, reach).
type manifest struct {
	// Source is the file path as given or found while walking a directory, or
	// "<stdin>".
	Source string
	// Index is the 1-based number of the document in Source. Documents that
	// hold nothing but whitespace and comments are not counted.
	Index int
	// Item is the 1-based position inside a List document (kind "List" or any
	// "<Kind>List" with items), 0 for a document that is not a list.
	Item int
	// Object is typed through manifestScheme when its kind is registered there,
	// else *unstructured.Unstructured.
	Object runtime.Object
	// doc is the document's text, for fieldPosition (positions.go).
	doc *docText
}

// Location names the document for people: "file.yaml#2", or
// "file.yaml#2.items[3]" (0-based, as in a JSON path) for a List item.
func (m manifest) Location() string {
	return formatLocation(m.Source, m.Index, m.Item)
}

func formatLocation(source string, index, item int) string {
	switch {
	case index == 0:
		return source
	case item == 0:
		return fmt.Sprintf("%s#%d", source, index)
	default:
		return fmt.Sprintf("%s#%d.items[%d]", source, index, item-1)
	}
}

// manifestError is a problem with one input: a path that cannot be read
// (Index 0), a document that cannot be decoded, or one item of a List.
type manifestError struct {
	Source string
	Index  int
	Item   int
	Err    error
}

// Error names the document as every other message about the input does
// ("file.yaml#2: ..."), so that one mistake reads the same in check,
// generate and reach.
func (e *manifestError) Error() string {
	return fmt.Sprintf("%s: %v", e.Location(), e.Err)
}

func (e *manifestError) Unwrap() error { return e.Err }

// Location is the same "file.yaml#2" form as manifest.Location.
func (e *manifestError) Location() string { return formatLocation(e.Source, e.Index, e.Item) }

// manifestExtensions are the file name endings read when walking a directory.
// A file named explicitly is read whatever its name.
var manifestExtensions = []string{".yaml", ".yml", ".json"}

// strictDecoder rejects unknown and duplicate fields in registered kinds, as
// kubectl's default server-side validation does: a misspelt "ingres:" or
// "namespaceSelectr:" silently dropped would change what a policy allows.
var strictDecoder = serializer.NewCodecFactory(manifestScheme, serializer.EnableStrict).UniversalDeserializer()

// loadManifests reads every object from paths: files (any name), directories
// (recursively, files ending in .yaml, .yml or .json, in lexical order) and
// "-" for stdin. Files may hold several YAML documents separated by "---", a
// JSON object, a stream of JSON objects, and List kinds, whose items are
// returned as separate manifests.
//
// Every problem is returned as a *manifestError naming the file, document
// number and reason; a bad document or List item never loses the others, and
// the manifests keep input order.
func loadManifests(paths []string, stdin io.Reader) ([]manifest, []error) {
	var (
		out       []manifest
		errs      []error
		stdinRead bool
	)
	for _, p := range paths {
		switch {
		case p == "-":
			if stdinRead {
				errs = append(errs, &manifestError{Source: stdinSource, Err: errors.New(`"-" (stdin) given more than once`)})
				continue
			}
			stdinRead = true
			if stdin == nil {
				errs = append(errs, &manifestError{Source: stdinSource, Err: errors.New("no standard input")})
				continue
			}
			data, err := io.ReadAll(stdin)
			if err != nil {
				errs = append(errs, &manifestError{Source: stdinSource, Err: err})
				continue
			}
			ms, es := decodeManifests(stdinSource, data)
			out, errs = append(out, ms...), append(errs, es...)
		case p == "":
			errs = append(errs, &manifestError{Source: `""`, Err: errors.New("empty path")})
		default:
			ms, es := loadPath(p)
			out, errs = append(out, ms...), append(errs, es...)
		}
	}
	return out, errs
}

func loadPath(path string) ([]manifest, []error) {
	info, err := os.Stat(path)
	if err != nil {
		return nil, []error{&manifestError{Source: path, Err: pathError(err)}}
	}
	if !info.IsDir() {
		return loadFile(path)
	}
	var (
		out   []manifest
		errs  []error
		found bool
	)
	walkErr := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			errs = append(errs, &manifestError{Source: p, Err: pathError(err)})
			if d != nil && d.IsDir() && p != path {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() || !hasManifestExtension(p) {
			return nil
		}
		// A symlink may point at a directory; only regular files are read.
		if d.Type()&fs.ModeSymlink != 0 {
			if st, err := os.Stat(p); err != nil || st.IsDir() {
				return nil
			}
		}
		found = true
		ms, es := loadFile(p)
		out, errs = append(out, ms...), append(errs, es...)
		return nil
	})
	if walkErr != nil {
		errs = append(errs, &manifestError{Source: path, Err: pathError(walkErr)})
	}
	if !found && len(errs) == 0 {
		// An empty directory is almost always a wrong path in CI; passing it
		// silently would report "nothing violated" for nothing checked.
		errs = append(errs, &manifestError{Source: path, Err: fmt.Errorf("directory holds no %s files", strings.Join(manifestExtensions, ", "))})
	}
	return out, errs
}

func hasManifestExtension(p string) bool {
	ext := strings.ToLower(filepath.Ext(p))
	for _, e := range manifestExtensions {
		if ext == e {
			return true
		}
	}
	return false
}

// pathError drops the path that *fs.PathError repeats, since manifestError
// already names it.
func pathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

func loadFile(path string) ([]manifest, []error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, []error{&manifestError{Source: path, Err: pathError(err)}}
	}
	return decodeManifests(path, data)
}

// decodeManifests splits data into documents and decodes each one.
func decodeManifests(source string, data []byte) ([]manifest, []error) {
	docs, err := splitDocuments(data)
	var (
		out  []manifest
		errs []error
	)
	for i, doc := range docs {
		ms, es := decodeDocument(source, i+1, doc)
		out, errs = append(out, ms...), append(errs, es...)
	}
	if err != nil {
		// Everything before the unreadable part was decoded above.
		errs = append(errs, &manifestError{Source: source, Index: len(docs) + 1, Err: err})
	}
	return out, errs
}

// splitDocuments returns the JSON form of each document in data. A JSON
// stream (data starting with "{") is split into its top-level values; YAML is
// split on "---" lines. Empty documents are dropped. Documents that are not
// valid YAML come back as errDocument so that their number is kept.
func splitDocuments(data []byte) ([]rawDocument, error) {
	var docs []rawDocument
	// The position of each document in data, for fieldPosition.
	var cursor lineCursor
	if utilyaml.IsJSONBuffer(data) {
		dec := json.NewDecoder(bytes.NewReader(data))
		for {
			var raw json.RawMessage
			start := int(dec.InputOffset())
			if err := dec.Decode(&raw); err != nil {
				if err == io.EOF {
					return docs, nil
				}
				// A JSON syntax error leaves the decoder unable to find the
				// next value: stop here and report the rest as one document.
				return docs, fmt.Errorf("invalid JSON: %v", err)
			}
			// InputOffset was before the whitespace that leads the value.
			start += bytes.Index(data[start:], raw[:1])
			line, col := cursor.at(data, start)
			docs = append(docs, rawDocument{json: raw, src: &docText{text: raw, line: line, col: col}})
		}
	}
	reader := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	for {
		chunk, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return docs, err
		}
		// The reader returns each document's lines as they are in data.
		var src *docText
		if i := bytes.Index(data[cursor.offset:], chunk); i >= 0 {
			line, _ := cursor.at(data, cursor.offset+i)
			src = &docText{text: chunk, line: line, col: 1}
			cursor.at(data, cursor.offset+i+len(chunk))
		}
		if isBlankYAML(chunk) {
			continue
		}
		j, err := utilyaml.ToJSON(chunk)
		if err != nil {
			docs = append(docs, rawDocument{err: fmt.Errorf("invalid YAML: %v", err)})
			continue
		}
		docs = append(docs, rawDocument{json: j, src: src})
	}
}

type rawDocument struct {
	json []byte
	err  error
	src  *docText // nil when its place in the file is unknown
}

// isBlankYAML reports whether a document holds only whitespace, comments and
// document markers.
func isBlankYAML(doc []byte) bool {
	for _, line := range bytes.Split(doc, []byte("\n")) {
		l := bytes.TrimSpace(line)
		if len(l) == 0 || l[0] == '#' || bytes.Equal(l, []byte("...")) || bytes.Equal(l, []byte("---")) {
			continue
		}
		return false
	}
	return true
}

// header is what the loader needs to know about a document before decoding it.
type header struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Items      json.RawMessage `json:"items"`
}

func decodeDocument(source string, index int, doc rawDocument) ([]manifest, []error) {
	fail := func(item int, err error) *manifestError {
		return &manifestError{Source: source, Index: index, Item: item, Err: err}
	}
	if doc.err != nil {
		return nil, []error{fail(0, doc.err)}
	}
	if bytes.Equal(bytes.TrimSpace(doc.json), []byte("null")) {
		return nil, nil
	}
	var h header
	if err := json.Unmarshal(doc.json, &h); err != nil {
		return nil, []error{fail(0, notAnObject(err))}
	}
	if !isList(h) {
		obj, err := decodeObject(doc.json, h, nil)
		if err != nil {
			return nil, []error{fail(0, err)}
		}
		return []manifest{{Source: source, Index: index, Object: obj, doc: doc.src}}, nil
	}

	if h.APIVersion == "" {
		return nil, []error{fail(0, errors.New("apiVersion is missing"))}
	}
	var items []json.RawMessage
	if err := json.Unmarshal(h.Items, &items); err != nil {
		return nil, []error{fail(0, fmt.Errorf("items of %s is not a list of objects", h.Kind))}
	}
	// Items of a typed list ("NetworkPolicyList") may leave out apiVersion
	// and kind; they are those of the list without the suffix.
	var def *schema.GroupVersionKind
	if h.Kind != "List" {
		gv, err := schema.ParseGroupVersion(h.APIVersion)
		if err != nil {
			return nil, []error{fail(0, fmt.Errorf("apiVersion %q: %v", h.APIVersion, err))}
		}
		gvk := gv.WithKind(strings.TrimSuffix(h.Kind, "List"))
		def = &gvk
	}
	var (
		out  []manifest
		errs []error
	)
	for i, raw := range items {
		var ih header
		if err := json.Unmarshal(raw, &ih); err != nil {
			errs = append(errs, fail(i+1, notAnObject(err)))
			continue
		}
		if isList(ih) {
			errs = append(errs, fail(i+1, fmt.Errorf("a %s inside a %s is not supported", ih.Kind, h.Kind)))
			continue
		}
		obj, err := decodeObject(raw, ih, def)
		if err != nil {
			errs = append(errs, fail(i+1, err))
			continue
		}
		out = append(out, manifest{Source: source, Index: index, Item: i + 1, Object: obj, doc: doc.src})
	}
	return out, errs
}

// isList reports whether the document is a List kind to expand: kind "List"
// or "<Kind>List" with an items field.
func isList(h header) bool {
	return h.Kind == "List" || (strings.HasSuffix(h.Kind, "List") && len(h.Items) > 0)
}

func notAnObject(err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "" && te.Value != "" {
		article := "a"
		if strings.IndexAny(te.Value[:1], "aeiou") == 0 {
			article = "an"
		}
		return fmt.Errorf("document is %s %s, not a Kubernetes object", article, te.Value)
	}
	return fmt.Errorf("not a Kubernetes object: %v", err)
}

// decodeObject decodes one object: typed when manifestScheme knows its kind,
// else unstructured. def fills in a missing apiVersion and kind.
func decodeObject(data []byte, h header, def *schema.GroupVersionKind) (runtime.Object, error) {
	if def != nil && h.Kind == "" && h.APIVersion == "" {
		h.APIVersion, h.Kind = def.GroupVersion().String(), def.Kind
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			return nil, notAnObject(err)
		}
		m["apiVersion"], m["kind"] = h.APIVersion, h.Kind
		var err error
		if data, err = json.Marshal(m); err != nil {
			return nil, err
		}
	}
	switch {
	case h.APIVersion == "" && h.Kind == "":
		return nil, errors.New("apiVersion and kind are missing")
	case h.APIVersion == "":
		return nil, fmt.Errorf("apiVersion is missing (kind %q)", h.Kind)
	case h.Kind == "":
		return nil, fmt.Errorf("kind is missing (apiVersion %q)", h.APIVersion)
	}
	gv, err := schema.ParseGroupVersion(h.APIVersion)
	if err != nil {
		return nil, fmt.Errorf("apiVersion %q: %v", h.APIVersion, err)
	}
	if manifestScheme.Recognizes(gv.WithKind(h.Kind)) {
		obj, _, err := strictDecoder.Decode(data, nil, nil)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %v", h.APIVersion, h.Kind, decodeError(err))
		}
		return obj, nil
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return nil, fmt.Errorf("%s %s: %v", h.APIVersion, h.Kind, err)
	}
	return u, nil
}

// decodeError shortens decoder errors, which otherwise repeat the whole
// document.
func decodeError(err error) error {
	if runtime.IsStrictDecodingError(err) {
		return err
	}
	msg := err.Error()
	if i := strings.Index(msg, "json: "); i >= 0 {
		msg = msg[i+len("json: "):]
	}
	if len(msg) > 300 {
		msg = msg[:300] + "..."
	}
	return errors.New(msg)
}
