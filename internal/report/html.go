package report

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Files written by Write.
const (
	HTMLFile    = "report.html"
	SummaryFile = "summary.json"
)

// ImageSource returns the src attribute of a chart's <img>: a data: URI
// for a self-contained file, "cid:NAME" for a mail.
type ImageSource func(c Chart) string

// DataURI embeds a chart as a data: URI.
func DataURI(c Chart) string {
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(c.PNG)
}

// ContentID refers to a chart as an inline mail part whose Content-ID is
// the chart's file name.
func ContentID(c Chart) string { return "cid:" + c.Name }

// WriteHTML writes the report as an HTML page to w, with the charts'
// images taken from src.
func WriteHTML(w io.Writer, rep *Report, charts []Chart, src ImageSource) error {
	type img struct {
		Src           template.URL
		Title, Name   string
		Width, Height int
	}
	imgs := map[string]img{}
	var bars []img
	for _, c := range charts {
		i := img{template.URL(src(c)), c.Title, c.Name, c.Width, c.Height}
		imgs[c.Name] = i
		if strings.HasPrefix(c.Name, "attacks-") {
			bars = append(bars, i)
		}
	}
	type addresses struct {
		ID, Title, Column string
		List              []AddressCount
		Other             int64
		Chart             *img
	}
	data := struct {
		*Report
		Pie, Line *img
		Bars      []img
		Addresses []addresses
		Footer    []string
	}{Report: rep, Bars: bars, Footer: MethodText(rep)}
	for _, a := range []addresses{
		{"top-sources", "Top attacking sources", "Source", rep.TopSources, rep.OtherSources, nil},
		{"top-destinations", "Most attacked hosts", "Destination", rep.TopDestinations, rep.OtherDestinations, nil},
	} {
		if len(a.List) == 0 {
			continue
		}
		if i, ok := imgs[a.ID+".png"]; ok {
			a.Chart = &i
		}
		data.Addresses = append(data.Addresses, a)
	}
	if i, ok := imgs["categories.png"]; ok {
		data.Pie = &i
	}
	if i, ok := imgs["attack-rate.png"]; ok {
		data.Line = &i
	}
	if err := htmlTemplate.Execute(w, data); err != nil {
		return fmt.Errorf("report html: %w", err)
	}
	return nil
}

// MethodText explains, in a few sentences, how the numbers and spikes were
// computed; the HTML footer and the plain-text mail end with it.
func MethodText(rep *Report) []string {
	m := rep.Method
	return []string{
		fmt.Sprintf("Counts are the detector's per-minute statistics summed over every instance, for minutes in [%s, %s) %s.",
			rep.Start.Format("2006-01-02 15:04"), rep.End.Format("2006-01-02 15:04"), rep.TimeZone),
		fmt.Sprintf("Spikes: each %v bucket's attack rate (non-normal verdicts / records) and unknown rate are compared with a baseline: the same bucket of the day on up to %d previous days, or, with fewer than %d such days, the %d buckets before it. The robust z-score is (rate − median) / (1.4826 × MAD; 1.2533 × the mean absolute deviation when the MAD is zero), the spread floored at %s.",
			shortDuration(time.Duration(rep.Bucket)), m.BaselineDays, m.MinBaselinePoints, m.TrailingBuckets, pp(m.MinScale)),
		fmt.Sprintf("A bucket is a spike when z ≥ %.1f, the rate is at least %s above the baseline median, and it holds at least %d such verdicts. Drivers are the attack types most above the count the baseline's mix predicts.",
			m.SpikeZ, pp(m.MinRateIncrease), m.MinCount),
		fmt.Sprintf("An instance (any seen in the window or the day before its end) is silent when it sent no statistics in the last %v of the window, and lagging when statistics were written more than %v after their minute.",
			shortDuration(m.SilentAfter), shortDuration(m.LagWarn)),
		fmt.Sprintf("A window is quiet when it has no spike, no unhealthy instance, and at most %s attacks.", Percent(m.QuietMaxAttackShare)),
	}
}

func pp(f float64) string { return fmt.Sprintf("%.1f percentage points", 100*f) }

// PlainText renders the report as plain text (the mail's alternative).
func PlainText(rep *Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "netsentinel report %s\n\n", rep.WindowLabel)
	if rep.Quiet {
		fmt.Fprintf(&b, "All quiet: no spikes, every detector instance healthy.\n\n")
	}
	if rep.HighAttackShare {
		fmt.Fprintf(&b, "HIGH ATTACK SHARE: %s of the records were attacks, above the %s a quiet window may have.\n\n",
			Percent(rep.AttackShare), Percent(rep.Method.QuietMaxAttackShare))
	}
	fmt.Fprintf(&b, "Records scored:  %d\nAttacks:         %d (%s)\nUnknown:         %d\nDead letters:    %d\nSpikes:          %d\n\n",
		rep.Records, rep.Attacks, Percent(rep.AttackShare), rep.Unknown, rep.DeadLetters, len(rep.Spikes))
	for _, p := range rep.Problems {
		fmt.Fprintf(&b, "PROBLEM: %s\n", p)
	}
	if len(rep.Problems) > 0 {
		b.WriteString("\n")
	}
	b.WriteString("By category:\n")
	for _, c := range rep.Categories {
		fmt.Fprintf(&b, "  %-8s %10d  %6s", c.Name, c.Count, Percent(c.Share))
		for i, a := range c.Attacks {
			if i == 5 {
				fmt.Fprintf(&b, " …")
				break
			}
			fmt.Fprintf(&b, "  %s %d", a.Name, a.Count)
		}
		b.WriteString("\n")
	}
	if len(rep.Spikes) > 0 {
		b.WriteString("\nSpikes:\n")
		for _, s := range rep.Spikes {
			fmt.Fprintf(&b, "  %s–%s  %s %s (baseline %s, z %.1f), %d of %d records; drivers:",
				s.Start.Format("2006-01-02 15:04"), s.End.Format("15:04"), s.Metric, Percent(s.Rate), Percent(s.Baseline), s.Z, s.Count, s.Records)
			for _, d := range s.Drivers {
				fmt.Fprintf(&b, " %s %d (expected %.0f)", d.Name, d.Count, d.Expected)
			}
			if len(s.Sources) > 0 {
				b.WriteString("; sources:")
				for _, a := range s.Sources {
					fmt.Fprintf(&b, " %s %d", a.Address, a.Count)
				}
			}
			if len(s.Incidents) > 0 {
				b.WriteString("; incidents: " + strings.Join(s.Incidents, "; "))
			}
			if len(s.Features) > 0 {
				b.WriteString("; features:")
				for _, f := range s.Features {
					fmt.Fprintf(&b, " %s %d", f.Name, f.Count)
				}
			}
			b.WriteString("\n")
		}
	}
	for _, l := range []struct {
		title string
		list  []AddressCount
		other int64
	}{{"Top attacking sources", rep.TopSources, rep.OtherSources}, {"Most attacked hosts", rep.TopDestinations, rep.OtherDestinations}} {
		if len(l.list) == 0 {
			continue
		}
		fmt.Fprintf(&b, "\n%s (alerts):\n", l.title)
		for _, a := range l.list {
			fmt.Fprintf(&b, "  %-40s %10d  %6s\n", a.Address, a.Count, Percent(a.Share))
		}
		if l.other > 0 {
			fmt.Fprintf(&b, "  %-40s %10d\n", "other addresses", l.other)
		}
	}
	if len(rep.Instances) > 0 {
		b.WriteString("\nDetector instances:\n")
		for _, in := range rep.Instances {
			fmt.Fprintf(&b, "  %-20s %-8s %d records, last minute %s, max lag %v\n",
				in.Name, in.Status, in.Records, in.LastSeen.Format("15:04"), time.Duration(in.MaxLag).Round(time.Second))
		}
	}
	if len(rep.TopIncidents) > 0 {
		b.WriteString("\nTop incidents (verdicts):\n")
		for _, in := range rep.TopIncidents {
			fmt.Fprintf(&b, "  %10d  %-8s %s (%s, %s–%s)", in.Count, in.Category, in.What(), in.Status,
				in.FirstSeen.Format("15:04"), in.LastSeen.Format("15:04"))
			if len(in.Features) > 0 {
				b.WriteString("; driven by " + strings.Join(in.Features, ", "))
			}
			b.WriteString("\n")
		}
	}
	if len(rep.Withheld) > 0 {
		b.WriteString("\nWithheld by rules (verdicts kept out of incidents, counted above all the same):\n")
		for _, r := range rep.Withheld {
			fmt.Fprintf(&b, "  %10d  %s\n", r.Count, r.Name)
		}
	}
	if len(rep.DeadLetterReasons) > 0 {
		b.WriteString("\nDead letters by reason:\n")
		for _, r := range rep.DeadLetterReasons {
			fmt.Fprintf(&b, "  %6d  %s\n", r.Count, r.Name)
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "\n%s", n)
	}
	b.WriteString("\n--\n")
	for _, l := range MethodText(rep) {
		fmt.Fprintf(&b, "%s\n", l)
	}
	return b.String()
}

// Write renders the report into dir: report.html (charts embedded as data:
// URIs), summary.json and the PNG charts. Each file is written to a
// temporary name and renamed, so readers never see half a file. It
// returns the charts it wrote.
func Write(dir string, rep *Report) ([]Chart, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("report dir: %w", err)
	}
	charts, err := Charts(rep)
	if err != nil {
		return nil, err
	}
	for _, c := range charts {
		if err := WriteFile(filepath.Join(dir, c.Name), c.PNG); err != nil {
			return nil, err
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, rep, charts, DataURI); err != nil {
		return nil, err
	}
	if err := WriteFile(filepath.Join(dir, HTMLFile), page.Bytes()); err != nil {
		return nil, err
	}
	js, err := json.MarshalIndent(rep, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("report summary: %w", err)
	}
	if err := WriteFile(filepath.Join(dir, SummaryFile), append(js, '\n')); err != nil {
		return nil, err
	}
	return charts, nil
}

// WriteFile writes b to path through a temporary file in the same
// directory and a rename, so a reader (or a crash) never sees half a file.
func WriteFile(path string, b []byte) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	_, err = tmp.Write(b)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

var htmlTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"pct":  Percent,
	"time": func(t time.Time) string { return t.Format("2006-01-02 15:04") },
	"hm":   func(t time.Time) string { return t.Format("15:04") },
	"dur":  func(d Duration) string { return shortDuration(time.Duration(d).Round(time.Second)) },
	"z":    func(z float64) string { return fmt.Sprintf("%.1f", z) },
	"z2":   func(f float64) string { return fmt.Sprintf("%.2f", f) },
	"exp":  func(f float64) string { return fmt.Sprintf("%.0f", f) },
}).Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>netsentinel: {{.Title}} — {{.WindowLabel}}</title>
<style>
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;color:#222;max-width:1000px;margin:1em auto;padding:0 1em}
h1{font-size:1.4em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0} td,th{padding:.25em .7em;text-align:left;border-bottom:1px solid #eee}
td.n,th.n{text-align:right;font-variant-numeric:tabular-nums}
.banner{padding:.6em 1em;border-radius:4px;margin:1em 0;font-weight:600}
.quiet{background:#e8f5e9;color:#1b5e20}.alert{background:#fff3e0;color:#e65100}.problem{background:#ffebee;color:#b71c1c}
.sub{color:#666} footer{margin-top:2em;font-size:.85em;color:#555;border-top:1px solid #ddd} img{max-width:100%;height:auto}
</style></head><body>
<h1>netsentinel report</h1>
<div class="sub">{{.WindowLabel}}{{if ne .TimeZone "UTC"}} ({{.TimeZone}}){{end}}, {{dur .Bucket}} buckets</div>
{{if .Quiet}}<div class="banner quiet">All quiet: {{.Records}} records scored, {{pct .AttackShare}} attacks, no spikes, every detector instance healthy.</div>
{{else}}{{if .HighAttackShare}}<div class="banner alert">{{pct .AttackShare}} of the records were attacks, above the {{pct .Method.QuietMaxAttackShare}} a quiet window may have{{if not .Spikes}} (no spike: the baseline was as high){{end}}.</div>{{end}}
{{if .Spikes}}<div class="banner alert">{{len .Spikes}} spike{{if ne (len .Spikes) 1}}s{{end}} in the attack rate.</div>{{end}}
{{range .Problems}}<div class="banner problem">{{.}}</div>{{end}}{{end}}
<h2>Summary</h2>
<table>
<tr><th>Records scored</th><td class="n" id="records">{{.Records}}</td></tr>
<tr><th>Attacks</th><td class="n" id="attacks">{{.Attacks}} ({{pct .AttackShare}})</td></tr>
<tr><th>Unknown (novel)</th><td class="n" id="unknown">{{.Unknown}}</td></tr>
<tr><th>Dead letters (failed to decode)</th><td class="n" id="dead-letters">{{.DeadLetters}}</td></tr>
<tr><th>Spikes</th><td class="n" id="spikes">{{len .Spikes}}</td></tr>
<tr><th>Detector instances</th><td class="n">{{len .Instances}}</td></tr>
</table>
<h2>By category</h2>
<table><tr><th>Category</th><th class="n">Count</th><th class="n">Share</th><th>Top attack types</th></tr>
{{range .Categories}}<tr><td>{{.Name}}</td><td class="n">{{.Count}}</td><td class="n">{{pct .Share}}</td><td>{{range $i, $a := .Attacks}}{{if lt $i 5}}{{if $i}}, {{end}}{{$a.Name}} {{$a.Count}}{{end}}{{end}}</td></tr>
{{end}}</table>
{{with .Pie}}<p><img src="{{.Src}}" alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}"></p>{{else}}<p class="sub">No records were scored in this window.</p>{{end}}
<h2>Attack rate over time</h2>
{{with .Line}}<p><img src="{{.Src}}" alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}"></p>{{end}}
{{if .Spikes}}<table><tr><th>Time</th><th>Metric</th><th class="n">Rate</th><th class="n">Baseline</th><th class="n">z</th><th class="n">Count</th><th>Driven by (count / expected)</th><th>Sources (alerts)</th><th>Incidents (verdicts)</th><th>Top features (verdicts)</th></tr>
{{range .Spikes}}<tr><td>{{time .Start}}–{{hm .End}}</td><td>{{.Metric}}</td><td class="n">{{pct .Rate}}</td><td class="n">{{pct .Baseline}}</td><td class="n">{{z .Z}}</td><td class="n">{{.Count}} / {{.Records}}</td><td>{{range $i, $d := .Drivers}}{{if $i}}, {{end}}{{$d.Name}} {{$d.Count}}/{{exp $d.Expected}}{{end}}</td><td>{{range $i, $a := .Sources}}{{if $i}}, {{end}}{{$a.Address}} {{$a.Count}}{{end}}</td><td>{{range $i, $n := .Incidents}}{{if $i}}; {{end}}{{$n}}{{end}}</td><td>{{range $i, $f := .Features}}{{if $i}}, {{end}}{{$f.Name}} {{$f.Count}}{{end}}</td></tr>
{{end}}</table>
<p class="sub">Baselines: {{range $i, $s := .Spikes}}{{if $i}}; {{end}}{{$s.BaselineSource}}{{end}}.</p>
{{else}}<p>No spikes: every bucket stayed within its baseline.</p>{{end}}
{{range .Addresses}}<h2>{{.Title}}</h2>
<table id="{{.ID}}"><tr><th>{{.Column}}</th><th class="n">Alerts</th><th class="n">Share of attacks</th></tr>
{{range .List}}<tr><td>{{.Address}}</td><td class="n">{{.Count}}</td><td class="n">{{pct .Share}}</td></tr>
{{end}}{{if .Other}}<tr><td class="sub">other addresses</td><td class="n">{{.Other}}</td><td></td></tr>
{{end}}</table>
{{with .Chart}}<p><img src="{{.Src}}" alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}"></p>{{end}}
{{end}}{{if .Bars}}<h2>Attack types per category</h2>
{{range .Bars}}<p><img src="{{.Src}}" alt="{{.Title}}" width="{{.Width}}" height="{{.Height}}"></p>
{{end}}{{end}}
{{if .TopAlerts}}<h2>Most novel alerts</h2>
<table><tr><th>Time</th><th>Attack</th><th>Category</th><th class="n">Probability</th><th class="n">Novelty</th><th>Flagged by</th><th>Source</th></tr>
{{range .TopAlerts}}<tr><td>{{time .Time}}</td><td>{{.Attack}}</td><td>{{.Category}}</td><td class="n">{{z2 .Probability}}</td><td class="n">{{z2 .Novelty}}</td><td>{{.FlaggedBy}}</td><td>{{.Source}}</td></tr>
{{end}}</table>{{end}}
{{if .TopIncidents}}<h2>Top incidents</h2>
<table><tr><th>Incident</th><th>Category</th><th>First seen</th><th>Last seen</th><th class="n">Verdicts</th><th>Status</th><th>Driven by</th><th>ID</th></tr>
{{range .TopIncidents}}<tr><td>{{.What}}</td><td>{{.Category}}</td><td>{{time .FirstSeen}}</td><td>{{time .LastSeen}}</td><td class="n">{{.Count}}</td><td>{{.Status}}</td><td>{{range $i, $f := .Features}}{{if $i}}, {{end}}{{$f}}{{end}}</td><td>{{.ID}}</td></tr>
{{end}}</table>{{end}}
{{if .Withheld}}<h2>Withheld by rules</h2>
<p class="sub">Verdicts the detector's rules kept out of incidents; they are counted in the totals above all the same.</p>
<table id="withheld"><tr><th>Rule</th><th class="n">Verdicts</th></tr>
{{range .Withheld}}<tr><td>{{.Name}}</td><td class="n">{{.Count}}</td></tr>
{{end}}</table>{{end}}
{{if .DeadLetterReasons}}<h2>Dead letters by reason</h2>
<table>{{range .DeadLetterReasons}}<tr><td>{{.Name}}</td><td class="n">{{.Count}}</td></tr>{{end}}</table>{{end}}
<h2>Detector instances</h2>
{{if .Instances}}<table><tr><th>Instance</th><th>Status</th><th class="n">Records</th><th>Last minute</th><th class="n">Max lag</th></tr>
{{range .Instances}}<tr><td>{{.Name}}</td><td>{{.Status}}</td><td class="n">{{.Records}}</td><td>{{time .LastSeen}}</td><td class="n">{{dur .MaxLag}}</td></tr>
{{end}}</table>{{else}}<p>No detector instance reported.</p>{{end}}
{{range .Notes}}<p>{{.}}</p>{{end}}
<footer><p><b>Method.</b></p>{{range .Footer}}<p>{{.}}</p>{{end}}
<p>Generated {{time .GeneratedAt}} by netsentinel. Report {{.ID}}.</p></footer>
</body></html>
`))
