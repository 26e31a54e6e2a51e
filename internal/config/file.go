package config

import (
	"bytes"
	"errors"
	"io"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// parseFile reads the settings of a YAML config file: one mapping from
// setting keys to strings (or, for list settings, to lists of strings).
// An empty file sets nothing. Every unknown or repeated key, and every value
// of the wrong shape, is an error; a file that is not YAML is one error.
func parseFile(path string, data []byte) (layer, []error) {
	fileErr := func(n *yaml.Node, key, msg string, err error) *FieldError {
		fe := &FieldError{Key: key, Source: SourceFile, File: path, Msg: msg, Err: err}
		if n != nil {
			fe.Line = n.Line
		}
		if s := byKey[key]; s != nil {
			fe.Setting = s.key
		}
		return fe
	}

	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
		return nil, nil
	} else if err != nil {
		return nil, []error{fileErr(nil, "", "not valid YAML", err)}
	}
	var next yaml.Node
	if err := dec.Decode(&next); err == nil {
		return nil, []error{fileErr(&next, "", "holds more than one YAML document", nil)}
	} else if !errors.Is(err, io.EOF) {
		return nil, []error{fileErr(nil, "", "not valid YAML", err)}
	}
	if len(doc.Content) == 0 {
		return nil, nil
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.ShortTag() == "!!null" {
		return nil, nil // "---" alone, or only comments
	}
	if root.Kind != yaml.MappingNode {
		return nil, []error{fileErr(root, "", "must be a mapping of setting keys to values", nil)}
	}

	l := layer{}
	var errs []error
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		key := k.Value
		s := byKey[key]
		switch {
		case k.Kind != yaml.ScalarNode:
			errs = append(errs, fileErr(k, "", "a key must be a string", nil))
			continue
		case s == nil:
			errs = append(errs, fileErr(k, key, unknownMsg("setting", key, settingNames(func(s *setting) string { return s.key })), nil))
			continue
		case s.noFile:
			errs = append(errs, fileErr(k, key, "cannot be set in the config file; use --"+s.flag()+" or "+s.env(), nil))
			continue
		}
		if prev, ok := l[key]; ok {
			errs = append(errs, fileErr(k, key, "is set twice; first on line "+strconv.Itoa(prev.org.line), nil))
			continue
		}
		val, msg := nodeString(v, s.list)
		if msg != "" {
			errs = append(errs, fileErr(v, key, msg, nil))
			continue
		}
		l[key] = rawValue{v: val, org: origin{src: SourceFile, name: key, file: path, line: k.Line}}
	}
	return l, errs
}

// nodeString returns the value of a setting as a string. Scalars count as
// written ("0123" stays "0123"), null is empty, and a list setting may also
// be a sequence of scalars, which are joined with commas. If n has another
// shape, msg says what is wrong.
func nodeString(n *yaml.Node, list bool) (v, msg string) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	switch n.Kind {
	case yaml.ScalarNode:
		if n.ShortTag() == "!!null" {
			return "", ""
		}
		return n.Value, ""
	case yaml.SequenceNode:
		if !list {
			return "", "must be a single value, not a list"
		}
		items := make([]string, len(n.Content))
		for i, item := range n.Content {
			if item.Kind == yaml.AliasNode {
				item = item.Alias
			}
			if item.Kind != yaml.ScalarNode || item.ShortTag() == "!!null" {
				return "", "list item " + strconv.Itoa(i+1) + " must be a string"
			}
			items[i] = item.Value
		}
		return strings.Join(items, ","), ""
	}
	if list {
		return "", "must be a string or a list of strings"
	}
	return "", "must be a single value"
}
