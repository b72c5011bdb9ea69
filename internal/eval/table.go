package eval

import (
	"fmt"
	"io"
	"strconv"

	"github.com/netsentinel/netsentinel/internal/record"
)

// WriteTable writes r as a table for people: the accuracy lines, per-category
// recall and precision, and the confusion matrix (rows true, columns
// predicted). Undefined metrics print as "-".
func (r Report) WriteTable(w io.Writer) error {
	var b []byte
	b = fmt.Appendf(b, "records %d, skipped %d\n\n", r.Records, r.Skipped)
	b = fmt.Appendf(b, "binary    accuracy %s  detection rate %s  false positive rate %s  AUC %s\n",
		pct(r.Binary.Accuracy), pct(r.Binary.DetectionRate), pct(r.Binary.FalsePositiveRate), num(r.Binary.AUC))
	b = fmt.Appendf(b, "category  accuracy %s  cost per example %s\n", pct(r.Category.Accuracy), num(r.Category.CostPerExample))
	b = fmt.Appendf(b, "attack    accuracy %s\n", pct(r.Attack.Accuracy))
	if r.Novelty != nil {
		b = fmt.Appendf(b, "novelty   AUC %s (novelty score alone)\n", num(r.Novelty.AUC))
	}
	b = append(b, '\n')

	cats := r.Category.names()
	b = fmt.Appendf(b, "%-9s %10s %8s %9s\n", "category", "support", "recall", "precision")
	for _, c := range cats {
		var support int64
		for _, n := range r.Category.Confusion[c] {
			support += n
		}
		b = fmt.Appendf(b, "%-9s %10d %8s %9s\n", c, support, pct(r.Category.Recall[c]), pct(r.Category.Precision[c]))
	}

	b = append(b, "\nconfusion (rows true, columns predicted)\n"...)
	b = fmt.Appendf(b, "%-9s", "")
	for _, c := range cats {
		b = fmt.Appendf(b, " %9s", c)
	}
	b = append(b, '\n')
	for _, t := range cats {
		b = fmt.Appendf(b, "%-9s", t)
		for _, p := range cats {
			b = fmt.Appendf(b, " %9d", r.Category.Confusion[t][p])
		}
		b = append(b, '\n')
	}
	if _, err := w.Write(b); err != nil {
		return fmt.Errorf("write table: %w", err)
	}
	return nil
}

// names returns the category names the report holds, in the order of
// record.Categories.
func (c *CategoryReport) names() []string {
	var names []string
	for _, cat := range record.Categories {
		if _, ok := c.Confusion[cat.String()]; ok {
			names = append(names, cat.String())
		}
	}
	return names
}

func pct(m Metric) string {
	if !m.Defined() {
		return "-"
	}
	return strconv.FormatFloat(100*float64(m), 'f', 2, 64) + "%"
}

func num(m Metric) string {
	if !m.Defined() {
		return "-"
	}
	return strconv.FormatFloat(float64(m), 'f', 4, 64)
}
