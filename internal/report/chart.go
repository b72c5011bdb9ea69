package report

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-analyze/charts"
)

// Chart sizes in pixels.
const (
	PieWidth, PieHeight   = 640, 400
	BarWidth, BarHeight   = 640, 360
	LineWidth, LineHeight = 960, 380
)

// Chart is one rendered PNG chart.
type Chart struct {
	// Name is the file name, e.g. "categories.png"; it is also the
	// Content-ID of the inline image in a mail.
	Name string
	// Title describes the chart (the image's alt text).
	Title  string
	PNG    []byte
	Width  int
	Height int
}

// Charts renders the report's charts: a pie of the shares per category
// (when any record was scored), one bar chart per attack category with
// attacks ("attacks-dos.png", ...) and the attack rate over time with the
// spikes marked ("attack-rate.png").
func Charts(rep *Report) ([]Chart, error) { return renderCharts(rep, charts.ChartOutputPNG) }

// renderCharts renders the charts of Charts in an output format of package
// charts. FuzzReport renders SVG: the same layout (axis ranges, ticks,
// labels, legends) without the rasterizer and PNG encoder, which take tens
// of milliseconds per chart.
func renderCharts(rep *Report, format string) ([]Chart, error) {
	var out []Chart
	if rep.Records > 0 {
		c, err := pieChart(rep, format)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for _, cat := range rep.Categories {
		if cat.Name == "normal" || len(cat.Attacks) == 0 {
			continue
		}
		c, err := barChart(cat, format)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(rep.Buckets) > 0 {
		c, err := lineChart(rep, format)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for _, a := range []struct {
		name, title string
		list        []AddressCount
	}{{"top-sources.png", "Top attacking sources", rep.TopSources}, {"top-destinations.png", "Most attacked hosts", rep.TopDestinations}} {
		if len(a.list) == 0 {
			continue
		}
		c, err := addressChart(a.name, a.title, a.list, format)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// addressChart draws alerts per address as horizontal bars, the most
// alerts at the top.
func addressChart(name, title string, list []AddressCount, format string) (Chart, error) {
	n := len(list)
	values := make([]float64, n)
	labels := make([]string, n)
	for i, a := range list {
		// The first category is drawn at the bottom.
		values[n-1-i] = float64(a.Count)
		labels[n-1-i] = a.Address
	}
	h := max(BarHeight/2, 80+28*n)
	return render(format, name, title, BarWidth, h, func(p *charts.Painter) error {
		opt := charts.NewBarChartOptionWithData([][]float64{values})
		opt.Horizontal = true
		opt.Title = charts.TitleOption{Text: title, Subtext: fmt.Sprintf("alerts per address, top %d", n)}
		opt.Padding = charts.NewBox(20, 20, 30, 20)
		opt.CategoryAxis.Labels = labels
		opt.SeriesList[0].Label.Show = charts.Ptr(true)
		opt.SeriesList[0].Label.ValueFormatter = func(v float64) string { return fmt.Sprintf("%.0f", v) }
		opt.ValueAxis = []charts.ValueAxisOption{{Min: charts.Ptr(0.0)}}
		opt.Theme = charts.GetDefaultTheme().WithSeriesColors([]charts.Color{categoryColors["dos"]})
		return p.BarChart(opt)
	})
}

func render(format, name, title string, w, h int, draw func(p *charts.Painter) error) (Chart, error) {
	p := charts.NewPainter(charts.PainterOptions{OutputFormat: format, Width: w, Height: h})
	if err := draw(p); err != nil {
		return Chart{}, fmt.Errorf("chart %s: %w", name, err)
	}
	b, err := p.Bytes()
	if err != nil {
		return Chart{}, fmt.Errorf("chart %s: %w", name, err)
	}
	return Chart{Name: name, Title: title, PNG: b, Width: w, Height: h}, nil
}

// categoryColors gives each category the same colour in every chart.
var categoryColors = map[string]charts.Color{
	"normal":  charts.ColorFromHex("#66bb6a"),
	"dos":     charts.ColorFromHex("#e53935"),
	"probe":   charts.ColorFromHex("#fb8c00"),
	"r2l":     charts.ColorFromHex("#8e24aa"),
	"u2r":     charts.ColorFromHex("#3949ab"),
	"unknown": charts.ColorFromHex("#757575"),
}

func pieChart(rep *Report, format string) (Chart, error) {
	var values []float64
	var names []string
	var colors []charts.Color
	for _, c := range rep.Categories {
		if c.Count <= 0 { // a pie has no negative slices
			continue
		}
		values = append(values, float64(c.Count))
		names = append(names, c.Name)
		colors = append(colors, categoryColors[c.Name])
	}
	title := "Verdicts by category"
	return render(format, "categories.png", title, PieWidth, PieHeight, func(p *charts.Painter) error {
		opt := charts.NewPieChartOptionWithData(values)
		opt.Theme = charts.GetDefaultTheme().WithSeriesColors(colors)
		opt.Title = charts.TitleOption{Text: title, Subtext: fmt.Sprintf("%d records", rep.Records)}
		opt.Padding = charts.NewBox(20, 40, 20, 20)
		opt.Legend = charts.LegendOption{
			SeriesNames: names,
			Vertical:    charts.Ptr(true),
			Offset:      charts.OffsetStr{Left: "78%", Top: charts.PositionBottom},
		}
		return p.PieChart(opt)
	})
}

func barChart(cat CategoryCount, format string) (Chart, error) {
	attacks := cat.Attacks
	const maxBars = 12
	if len(attacks) > maxBars {
		var rest int64
		for _, a := range attacks[maxBars-1:] {
			rest += a.Count
		}
		attacks = append(attacks[:maxBars-1:maxBars-1], AttackCount{Name: "other", Count: rest})
	}
	values := make([]float64, len(attacks))
	labels := make([]string, len(attacks))
	for i, a := range attacks {
		values[i] = float64(a.Count)
		labels[i] = a.Name
	}
	title := fmt.Sprintf("%s: attack types", strings.ToUpper(cat.Name))
	return render(format, "attacks-"+cat.Name+".png", title, BarWidth, BarHeight, func(p *charts.Painter) error {
		opt := charts.NewBarChartOptionWithData([][]float64{values})
		opt.Title = charts.TitleOption{Text: title, Subtext: fmt.Sprintf("%d verdicts", cat.Count)}
		opt.Padding = charts.NewBox(20, 20, 20, 20)
		opt.CategoryAxis.Labels = labels
		if len(labels) > 5 {
			opt.CategoryAxis.LabelRotation = charts.DegreesToRadians(30)
		}
		opt.SeriesList[0].Label.Show = charts.Ptr(true)
		opt.SeriesList[0].Label.ValueFormatter = func(v float64) string { return fmt.Sprintf("%.0f", v) }
		opt.ValueAxis = []charts.ValueAxisOption{{Min: charts.Ptr(0.0)}}
		opt.Theme = charts.GetDefaultTheme().WithSeriesColors([]charts.Color{categoryColors[cat.Name]})
		return p.BarChart(opt)
	})
}

func lineChart(rep *Report, format string) (Chart, error) {
	n := len(rep.Buckets)
	attack := make([]float64, n)
	unknown := make([]float64, n)
	spikes := make([]float64, n)
	labels := make([]string, n)
	layout := "15:04"
	if time.Duration(rep.Bucket) >= time.Hour && rep.End.Sub(rep.Start) > 24*time.Hour {
		layout = "01-02 15h"
	}
	for i, b := range rep.Buckets {
		// A bucket without records has no rate: leave a gap, not a 0%.
		attack[i], unknown[i] = charts.GetNullValue(), charts.GetNullValue()
		if b.Records > 0 {
			attack[i] = 100 * b.AttackRate
			unknown[i] = 100 * b.UnknownRate
		}
		spikes[i] = charts.GetNullValue()
		if step := (n + 11) / 12; i%step == 0 {
			labels[i] = b.Start.Format(layout)
		}
	}
	for _, s := range rep.Spikes {
		for i, b := range rep.Buckets {
			if b.Start.Equal(s.Start) {
				spikes[i] = 100 * s.Rate
			}
		}
	}
	title := "Attack rate over time (%)"
	return render(format, "attack-rate.png", title, LineWidth, LineHeight, func(p *charts.Painter) error {
		opt := charts.NewLineChartOptionWithData([][]float64{attack, unknown, spikes})
		opt.Title = charts.TitleOption{Text: title, Subtext: fmt.Sprintf("%s buckets, %s", shortDuration(time.Duration(rep.Bucket)), rep.WindowLabel)}
		opt.Padding = charts.NewBox(20, 20, 30, 20)
		opt.XAxis.Labels = labels
		opt.XAxis.BoundaryGap = charts.Ptr(false)
		opt.XAxis.LabelCount = n // every tick labelled; labels thinned below
		opt.Legend = charts.LegendOption{SeriesNames: []string{"attacks", "unknown", "spike"}, Offset: charts.OffsetRight}
		opt.YAxis = []charts.YAxisOption{{Min: charts.Ptr(0.0), ValueFormatter: func(v float64) string { return fmt.Sprintf("%.0f%%", v) }}}
		opt.LineStrokeWidth = 2
		opt.Symbol = charts.Symbol{Shape: charts.SymbolNone}
		opt.SeriesList[2].Symbol = charts.Symbol{Shape: charts.SymbolDot, Size: 6}
		if n <= 48 {
			// Few points: show them, so a lone bucket with data is visible.
			opt.SeriesList[0].Symbol = charts.Symbol{Shape: charts.SymbolDot, Size: 3}
		}
		opt.Theme = charts.GetDefaultTheme().WithSeriesColors([]charts.Color{
			charts.ColorFromHex("#1e88e5"), categoryColors["unknown"], charts.ColorFromHex("#d50000"),
		})
		return p.LineChart(opt)
	})
}

// shortDuration formats whole hours and minutes without zero units: "1h",
// "5m", "1h30m".
func shortDuration(d time.Duration) string {
	s := d.String()
	s = strings.TrimSuffix(s, "0s")
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
