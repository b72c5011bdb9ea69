package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/go-analyze/charts"
	"github.com/netsentinel/netsentinel/internal/event"
)

// FuzzReport feeds statistics messages as they could arrive from Kafka
// (JSON lines, any content: negative or huge counts, odd names, minutes
// anywhere in time) through the aggregator and Build. Nothing may panic; a
// report that builds must render its charts (as SVG: the layout of the PNG
// charts without the rasterizer), HTML and text.
func FuzzReport(f *testing.F) {
	f.Add([]byte(`{"minute":"2026-11-26T14:05:00Z","instance":"a","records":100,"by_category":{"normal":90,"dos":10},"by_attack":{"neptune":10},"dead_letters":1}`))
	f.Add([]byte(`{"minute":"2026-11-26T14:05:00Z","instance":"a","records":-5,"by_category":{"normal":-9,"u2r":3},"by_attack":{"":-1}}` + "\n" +
		`{"minute":"2026-11-26T14:59:00Z","instance":"","records":9223372036854775807,"by_category":{"unknown":9223372036854775807}}`))
	f.Add([]byte(`{"minute":"0001-01-01T00:00:00Z"}` + "\n" + `not json`))
	f.Add([]byte(`{"minute":"2026-11-26T14:05:00Z","instance":"a","records":100,"by_category":{"normal":90,"dos":10},"by_attack":{"neptune":10},` +
		`"top_sources":{"10.0.0.7":9,"":-3,"<b>":1},"other_sources":1,"top_destinations":{"::1":10},"other_destinations":-2}`))
	end := time.Date(2026, 11, 26, 15, 0, 0, 0, time.UTC)
	w := Window{Start: end.Add(-time.Hour), End: end, Location: time.UTC}
	// Charts render once per distinct chart input: most mutations give a
	// report already drawn (an empty one, above all), and drawing takes
	// milliseconds where the rest takes microseconds.
	rendered := map[string]bool{}
	f.Fuzz(func(t *testing.T, data []byte) {
		var agg Aggregator
		sc := bufio.NewScanner(bytes.NewReader(data))
		for sc.Scan() {
			var s event.Stats
			if json.Unmarshal(sc.Bytes(), &s) == nil {
				agg.Add(s, end)
			}
		}
		rep, err := Build(agg.Series(), w, Config{})
		if err != nil {
			return
		}
		var cs []Chart
		if key := chartKey(rep); !rendered[key] {
			if len(rendered) >= 1<<14 {
				clear(rendered)
			}
			rendered[key] = true
			if cs, err = renderCharts(rep, charts.ChartOutputSVG); err != nil {
				t.Fatalf("charts: %v", err)
			}
		}
		var page bytes.Buffer
		if err := WriteHTML(&page, rep, cs, DataURI); err != nil {
			t.Fatalf("WriteHTML: %v", err)
		}
		_ = PlainText(rep)
	})
}

// chartKey returns what the charts of rep are drawn from.
func chartKey(rep *Report) string {
	return fmt.Sprint(rep.Records, rep.Categories, rep.Buckets, rep.Spikes, rep.Bucket, rep.Start, rep.End, rep.WindowLabel, rep.TopSources, rep.TopDestinations)
}
