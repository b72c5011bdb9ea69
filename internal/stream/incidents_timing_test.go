package stream

import (
	"context"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/incident"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
)

// hiddenExplain is a scorer without Explain or NoveltyFeatures: the
// detector then leaves incidents unexplained.
type hiddenExplain struct{ s Scorer }

func (h hiddenExplain) PredictRecord(r *record.Record) model.Verdict { return h.s.PredictRecord(r) }

// noveltyOnly is a scorer with NoveltyFeatures but without Explain: the
// detector then counts novelty features but explains no first verdict.
type noveltyOnly struct{ *model.Detector }

func (noveltyOnly) Explain() {}

// BenchmarkIncidentObserve measures what the incident tables cost per
// attack verdict of the default detector (trained on the shipped 20%
// file) over the first 20,000 records of that file, keyed by attack,
// service and flag as records without addresses are: capturing the
// verdict, grouping it, and (sub-benchmark "explained") explaining the
// first verdict of every incident, against "novelty-features" (only the
// novelty part's features of each novelty verdict, no explanation) and
// "none". The scoring itself is done before the timer starts.
func BenchmarkIncidentObserve(b *testing.B) {
	ds, err := dataset.Load("../../data/KDDTrain+_20Percent.txt.gz", dataset.Options{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := model.Train(context.Background(), ds, model.DefaultTrainOptions())
	if err != nil {
		b.Fatal(err)
	}
	type scored struct {
		rec *record.Record
		v   model.Verdict
		r   kgo.Record
	}
	var verdicts []scored
	t0 := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	for i, l := range kddLines(b, 20000) {
		rec := new(record.Record)
		if err := record.Decode(l, rec); err != nil {
			b.Fatal(err)
		}
		if v := m.PredictRecord(rec); v.IsAttack {
			verdicts = append(verdicts, scored{rec, v, kgo.Record{Offset: int64(i), Timestamp: t0.Add(time.Duration(i) * time.Millisecond)}})
		}
	}
	for _, c := range []struct {
		name   string
		scorer Scorer
	}{{"explained", m}, {"novelty-features", noveltyOnly{m}}, {"none", hiddenExplain{m}}} {
		b.Run(c.name, func(b *testing.B) {
			d := &Detector{cur: &scoring{scorer: c.scorer}, opts: Options{Incidents: IncidentOptions{Topic: "incidents"}}, workers: []*worker{{}}}
			d.inc = &incidents{d: d, tables: map[int32]*incident.Table{}}
			var res result
			opened := 0
			for b.Loop() {
				d.inc.tables[0] = incident.NewTable(incident.Config{})
				d.startScoring()
				for i := range verdicts {
					s := &verdicts[i]
					res = result{kind: resultAlert, category: s.v.Category, attack: s.v.Attack}
					d.captureIncident(&res, s.rec, &s.v)
					d.inc.observe(&s.r, &res, s.r.Timestamp)
				}
				opened = d.inc.tables[0].Open()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(verdicts)), "ns/verdict")
			b.ReportMetric(float64(opened), "incidents")
			b.ReportMetric(float64(len(verdicts)), "verdicts")
		})
	}
}
