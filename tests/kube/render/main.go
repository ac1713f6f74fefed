// render: renders a Helm chart the way Helm does (Go text/template with the
// sprig functions plus include, tpl, toYaml, required), for tests: Helm
// itself is not packaged in Debian.  Build with GOPATH=/usr/share/gocode
// GO111MODULE=off (Debian's golang-github-masterminds-sprig-dev).
//
//   render CHART_DIR [VALUES_OVERRIDE.yaml] > manifests.yaml
package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v2"
)

func normalize(v interface{}) interface{} {
	switch t := v.(type) {
	case map[interface{}]interface{}:
		m := map[string]interface{}{}
		for k, x := range t {
			m[fmt.Sprint(k)] = normalize(x)
		}
		return m
	case []interface{}:
		for i := range t {
			t[i] = normalize(t[i])
		}
	}
	return v
}

func merge(dst, src map[string]interface{}) {
	for k, v := range src {
		if sm, ok := v.(map[string]interface{}); ok {
			if dm, ok := dst[k].(map[string]interface{}); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

func load(path string) map[string]interface{} {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var v interface{}
	if err := yaml.Unmarshal(b, &v); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
		os.Exit(1)
	}
	m, _ := normalize(v).(map[string]interface{})
	if m == nil {
		m = map[string]interface{}{}
	}
	return m
}

func main() {
	chart := os.Args[1]
	values := load(filepath.Join(chart, "values.yaml"))
	if len(os.Args) > 2 {
		merge(values, load(os.Args[2]))
	}
	meta := load(filepath.Join(chart, "Chart.yaml"))
	root := map[string]interface{}{
		"Values":  values,
		"Release": map[string]interface{}{"Name": "rel", "Namespace": "shards", "Service": "Helm"},
		"Chart":   map[string]interface{}{"Name": meta["name"], "Version": meta["version"], "AppVersion": meta["appVersion"]},
	}
	t := template.New("chart")
	funcs := sprig.TxtFuncMap()
	funcs["include"] = func(name string, data interface{}) (string, error) {
		var b bytes.Buffer
		err := t.ExecuteTemplate(&b, name, data)
		return b.String(), err
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		x, err := t.Clone()
		if err != nil {
			return "", err
		}
		x, err = x.New("tpl").Parse(text)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = x.Execute(&b, data)
		return b.String(), err
	}
	funcs["toYaml"] = func(v interface{}) string {
		b, err := yaml.Marshal(v)
		if err != nil {
			return ""
		}
		return strings.TrimSuffix(string(b), "\n")
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil || v == "" {
			return nil, fmt.Errorf("%s", msg)
		}
		return v, nil
	}
	t.Funcs(funcs).Option("missingkey=zero")
	files, _ := filepath.Glob(filepath.Join(chart, "templates", "*"))
	sort.Strings(files)
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if _, err := t.New(filepath.Base(f)).Parse(string(b)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
	for _, f := range files {
		name := filepath.Base(f)
		if strings.HasPrefix(name, "_") || name == "NOTES.txt" {
			continue
		}
		var b bytes.Buffer
		if err := t.ExecuteTemplate(&b, name, root); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if s := strings.TrimSpace(b.String()); s != "" {
			fmt.Printf("---\n# Source: %s\n%s\n", name, s)
		}
	}
	var notes bytes.Buffer
	if err := t.ExecuteTemplate(&notes, "NOTES.txt", root); err != nil {
		fmt.Fprintln(os.Stderr, "NOTES.txt:", err)
		os.Exit(1)
	}
}
