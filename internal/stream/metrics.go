package stream

import (
	"strconv"
	"sync"

	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the detector's Prometheus metrics; see the package doc.
type metrics struct {
	records                   prometheus.Counter
	verdicts                  *prometheus.CounterVec
	verdictByCat              []prometheus.Counter // indexed by record.Category
	deadLetters               prometheus.Counter
	alerts                    prometheus.Counter
	lag                       *prometheus.GaugeVec
	batchDur                  prometheus.Histogram
	batchRecords              prometheus.Histogram
	transactions              *prometheus.CounterVec
	txCommitted               prometheus.Counter
	txAborted                 prometheus.Counter
	produceErrs               prometheus.Counter
	restarts                  prometheus.Counter
	lastCommit                prometheus.Gauge
	waiting                   prometheus.Gauge
	stalled                   prometheus.Gauge
	unseen                    *prometheus.CounterVec
	unseenService, unseenFlag prometheus.Counter

	lagMu          sync.Mutex // guards lagByPartition: revokes run on client goroutines
	lagByPartition map[int32]prometheus.Gauge
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		reg = prometheus.NewRegistry() // private: the metrics still work, nobody scrapes them
	}
	const ns, sub = "netsentinel", "detect"
	m := &metrics{
		records: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "records_total",
			Help: "Input records processed in committed transactions (scored or dead-lettered)."}),
		verdicts: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "verdicts_total",
			Help: "Verdicts in committed transactions by predicted category."}, []string{"category"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "dead_letters_total",
			Help: "Input records that failed to decode, in committed transactions."}),
		alerts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "alerts_total",
			Help: "Alerts (non-normal verdicts) written in committed transactions."}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "consumer_lag",
			Help: "Records behind the high watermark per input partition, as of the last fetch."}, []string{"partition"}),
		batchDur: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_duration_seconds",
			Help:    "Time from poll to the end of the batch's transaction.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}}),
		batchRecords: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: ns, Subsystem: sub, Name: "batch_records",
			Help:    "Input records per batch (transaction).",
			Buckets: prometheus.ExponentialBuckets(1, 4, 9)}),
		transactions: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "transactions_total",
			Help: "Transactions ended, by result (committed or aborted)."}, []string{"result"}),
		produceErrs: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "produce_errors_total",
			Help: "Output records that failed to produce (their transaction was aborted and retried)."}),
		restarts: prometheus.NewCounter(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "session_restarts_total",
			Help: "Kafka sessions recreated after a fatal transaction or client error."}),
		lastCommit: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "last_commit_timestamp_seconds",
			Help: "Unix time of the last committed transaction (0: none yet)."}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "records_waiting",
			Help: "Records waiting in the partitions this detector owns (end offset minus committed offset), as of the last lag check."}),
		stalled: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: ns, Subsystem: sub, Name: "stalled",
			Help: "1 while the detector has made no progress for longer than its stall timeout, else 0."}),
		unseen: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: ns, Subsystem: sub, Name: "unseen_values_total",
			Help: "Scored records whose service or flag the schema's vocabulary lacks (scored as other / OTH), by feature."}, []string{"feature"}),
		lagByPartition: map[int32]prometheus.Gauge{},
	}
	for _, c := range []prometheus.Collector{m.records, m.verdicts, m.deadLetters, m.alerts, m.lag, m.batchDur,
		m.batchRecords, m.transactions, m.produceErrs, m.restarts, m.lastCommit, m.waiting, m.stalled, m.unseen} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.txCommitted = m.transactions.WithLabelValues("committed")
	m.txAborted = m.transactions.WithLabelValues("aborted")
	m.unseenService = m.unseen.WithLabelValues("service")
	m.unseenFlag = m.unseen.WithLabelValues("flag")
	m.verdictByCat = make([]prometheus.Counter, len(record.Categories)+1)
	for _, c := range record.Categories {
		if int(c) >= len(m.verdictByCat) {
			grown := make([]prometheus.Counter, int(c)+1)
			copy(grown, m.verdictByCat)
			m.verdictByCat = grown
		}
		m.verdictByCat[c] = m.verdicts.WithLabelValues(c.String())
	}
	return m, nil
}

func (m *metrics) verdict(c record.Category, n int64) {
	if int(c) < len(m.verdictByCat) && m.verdictByCat[c] != nil {
		m.verdictByCat[c].Add(float64(n))
		return
	}
	m.verdicts.WithLabelValues(c.String()).Add(float64(n))
}

// dropLag removes the lag series of partitions this member no longer owns.
func (m *metrics) dropLag(partitions []int32) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	for _, p := range partitions {
		if _, ok := m.lagByPartition[p]; ok {
			m.lag.DeleteLabelValues(strconv.Itoa(int(p)))
			delete(m.lagByPartition, p)
		}
	}
}

func (m *metrics) setLag(partition int32, lag int64) {
	m.lagMu.Lock()
	defer m.lagMu.Unlock()
	g, ok := m.lagByPartition[partition]
	if !ok {
		g = m.lag.WithLabelValues(strconv.Itoa(int(partition)))
		m.lagByPartition[partition] = g
	}
	if lag < 0 {
		lag = 0
	}
	g.Set(float64(lag))
}
