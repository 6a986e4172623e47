package cmdutil

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"testing"

	"go.yaml.in/yaml/v3"
)

type item struct {
	Name string `json:"name" yaml:"name"`
	N    int    `json:"n" yaml:"n"`
}

func TestListPrinterFormats(t *testing.T) {
	for _, n := range []int{0, 1, 3} {
		items := make([]item, n)
		for i := range items {
			items[i] = item{Name: "k, \"quoted\"", N: i}
		}
		for _, format := range []string{FormatJSON, FormatYAML, FormatCSV} {
			var buf bytes.Buffer
			p := NewListPrinter(&buf, format, []string{"name", "n"}, func(it item) []string { return []string{it.Name, string(rune('0' + it.N))} })
			for _, it := range items {
				if err := p.Add(it); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.Close(); err != nil {
				t.Fatal(err)
			}
			var got []item
			switch format {
			case FormatJSON:
				if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
					t.Fatalf("%d items: invalid JSON %q: %v", n, buf.String(), err)
				}
			case FormatYAML:
				if err := yaml.Unmarshal(buf.Bytes(), &got); err != nil {
					t.Fatalf("%d items: invalid YAML %q: %v", n, buf.String(), err)
				}
			case FormatCSV:
				recs, err := csv.NewReader(&buf).ReadAll()
				if err != nil {
					t.Fatal(err)
				}
				if len(recs) != n+1 || recs[0][0] != "name" {
					t.Fatalf("%d items: CSV %v", n, recs)
				}
				for _, r := range recs[1:] {
					got = append(got, item{Name: r[0], N: int(r[1][0] - '0')})
				}
			}
			if len(got) != n {
				t.Fatalf("%s with %d items decoded %d", format, n, len(got))
			}
			for i := range got {
				if got[i] != items[i] {
					t.Errorf("%s item %d = %+v, want %+v", format, i, got[i], items[i])
				}
			}
		}
	}
}
