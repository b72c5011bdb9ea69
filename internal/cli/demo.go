package cli

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/data"
	"github.com/netsentinel/netsentinel/internal/broker"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/event"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/stream"
)

var cmdDemo = &Command{
	Name:      "demo",
	UsageLine: "demo [--file F] [--model M] [--rate N] [--detectors N] [--json] [--out DIR] [--smtp HOST:PORT --mail-to ADDR --mail-from ADDR ...]",
	Short:     "run the whole pipeline on one machine, no setup: broker, model, publish, detect, report",
	Long: `
Demo is the one-command tour. In one process it:

  1. starts the embedded Kafka-protocol broker on a free loopback port;
  2. trains the demo model (the default detector) on the NSL-KDD training
     rows that are NOT in the replayed file - or loads --model;
  3. publishes the replay file (default: the shipped NSL-KDD 20% file,
     25,192 labelled records, embedded in the binary) into a topic;
  4. runs --detectors detector instances in one consumer group, exactly
     once, writing alerts, per-minute statistics and dead letters;
  5. reads those outputs back, shows live progress, and ends with a
     summary: records in, verdicts by category, dead letters, accuracy
     against the labels, throughput and latency (produce to alert);
  6. writes a report of what it processed to --out (report.html,
     summary.json, PNG charts) and, with --smtp, mails it.

With --json the summary is one JSON object on stdout. The books are
checked: records = normal + verdicts + dead letters; demo fails if they do
not balance.
`,
	Flags: demoFlags,
}

// demoSummary is the demo's closing summary (--json prints it).
type demoSummary struct {
	Records     int64            `json:"records"`
	Normal      int64            `json:"normal"`
	Verdicts    int64            `json:"verdicts"`
	DeadLetters int64            `json:"dead_letters"`
	ByCategory  map[string]int64 `json:"by_category"`
	ByAttack    map[string]int64 `json:"by_attack"`
	Accuracy    struct {
		Binary   *float64 `json:"binary"`
		Category *float64 `json:"category"`
		Labelled int64    `json:"labelled"`
	} `json:"accuracy"`
	RecordsPerSecond float64 `json:"records_per_second"`
	LatencyMS        struct {
		P50 float64 `json:"p50"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	BooksBalance bool    `json:"books_balance"`
	Detectors    int     `json:"detectors"`
	Partitions   int     `json:"partitions"`
	Model        string  `json:"model"`
	File         string  `json:"file"`
	Seconds      float64 `json:"seconds"`
	Report       string  `json:"report,omitempty"`
}

const (
	demoTopic  = "netsentinel-demo-records"
	demoAlerts = "netsentinel-demo-alerts"
	demoStats  = "netsentinel-demo-stats"
	demoDead   = "netsentinel-demo-dead-letters"
)

func demoFlags(fs *flag.FlagSet) RunFunc {
	file := fs.String("file", "", "replay this KDD'99 / NSL-KDD `file` (plain or .gz) instead of the shipped NSL-KDD 20% file")
	modelPath := fs.String("model", "", "use this model `file` instead of training the demo model")
	rate := fs.Float64("rate", 0, "publish at most `N` records per second (0: as fast as possible)")
	detectors := fs.Int("detectors", 2, "detector instances in the consumer group")
	partitions := fs.Int("partitions", 4, "partitions of the records topic")
	listen := fs.String("listen", "127.0.0.1:0", "embedded broker `address` (port 0: a free port)")
	jsonOut := fs.Bool("json", false, "print the summary as one JSON object on stdout")
	out := fs.String("out", "netsentinel-report", "`directory` for the closing report (empty: no report)")
	timeout := fs.Duration("stall-timeout", time.Minute, "fail if no record is scored for this long")
	mf := addMailFlags(fs)
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if *detectors < 1 || *partitions < 1 {
			return Usagef("--detectors and --partitions must be at least 1")
		}
		if _, _, err := mf.config(); err != nil {
			return err
		}
		d := &demo{env: env, detectors: *detectors, partitions: *partitions, rate: *rate, quiet: *jsonOut, stall: *timeout}
		sum, err := d.run(ctx, *file, *modelPath, *listen, *out, mf)
		if err != nil {
			return err
		}
		if *jsonOut {
			enc := json.NewEncoder(env.Stdout)
			return enc.Encode(sum)
		}
		printDemoSummary(env.Stdout, sum)
		return nil
	}
}

type demo struct {
	env        *Env
	detectors  int
	partitions int
	rate       float64
	quiet      bool
	stall      time.Duration

	mu        sync.Mutex
	agg       report.Aggregator
	scored    int64 // records in stats (normal + verdicts)
	dead      int64 // dead letters seen
	alerts    int64
	byCat     map[string]int64
	byAttack  map[string]int64
	bin, cat  int64 // alerts whose binary / category verdict matches the label
	fp        int64 // alerts on records labelled normal
	latencies []float64
	lastStat  time.Time
}

// say prints progress to stderr unless the summary goes to stdout as JSON
// on a pipe; progress always goes to stderr.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.env.Stderr, format, args...)
}

func (d *demo) run(ctx context.Context, file, modelPath, listen, out string, mf *mailFlags) (*demoSummary, error) {
	start := time.Now()
	// The replay records, kept as the lines they are.
	lines, name, err := demoLines(file)
	if err != nil {
		return nil, err
	}
	var normals, labelled int64
	var rec record.Record
	for _, l := range lines {
		if record.Decode(l, &rec) != nil || rec.Label == "" {
			continue
		}
		labelled++
		if rec.Label == "normal" {
			normals++
		}
	}

	det, modelName, err := d.model(ctx, modelPath, file == "")
	if err != nil {
		return nil, err
	}

	b, err := broker.Start(ctx, broker.Config{Listen: listen, Partitions: d.partitions})
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	defer b.Close()
	addrs := b.Addrs()
	d.say("embedded broker on %s\n", strings.Join(addrs, ","))
	if err := createTopics(ctx, addrs, d.partitions); err != nil {
		return nil, err
	}
	ccfg := stream.ClientConfig{Brokers: addrs}

	// Detectors.
	dctx, stopDetectors := context.WithCancel(ctx)
	defer stopDetectors()
	var wg sync.WaitGroup
	errs := make(chan error, d.detectors+1)
	for i := range d.detectors {
		sd, err := stream.New(stream.Options{
			Client:          ccfg,
			Topic:           demoTopic,
			Group:           "netsentinel-demo",
			AlertsTopic:     demoAlerts,
			StatsTopic:      demoStats,
			DeadLetterTopic: demoDead,
			Instance:        fmt.Sprintf("demo-%d", i+1),
			Scorer:          det,
			Registerer:      prometheus.NewRegistry(),
			SessionTimeout:  6 * time.Second,
			CommitPause:     stream.DefaultOptions().CommitPause,
		})
		if err != nil {
			return nil, err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := sd.Run(dctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("detector %s: %w", sd.Instance(), err)
			}
		}()
	}

	// Output reader.
	d.byCat, d.byAttack = map[string]int64{}, map[string]int64{}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...),
		kgo.ConsumeTopics(demoAlerts, demoStats, demoDead),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		return nil, err
	}
	rctx, stopReader := context.WithCancel(ctx)
	defer stopReader()
	readerDone := make(chan struct{})
	go func() {
		defer close(readerDone)
		d.read(rctx, cl)
	}()

	// Publish.
	pubStart := time.Now()
	pub, err := stream.NewPublisher(stream.PublisherOptions{Client: ccfg, Topic: demoTopic, Rate: d.rate})
	if err != nil {
		return nil, err
	}
	d.say("publishing %d records from %s into %s (%d partitions), %d detectors scoring\n", len(lines), name, demoTopic, d.partitions, d.detectors)
	for _, l := range lines {
		if err := pub.Publish(ctx, nil, l); err != nil {
			break
		}
	}
	ps, err := pub.Close(ctx)
	if err != nil {
		return nil, fmt.Errorf("publish: %w", err)
	}

	// Wait until every record is accounted for.
	want := ps.Delivered
	tty := !d.quiet && isTerminal(d.env.Stderr)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := int64(-1), time.Now()
	for {
		d.mu.Lock()
		done := d.scored + d.dead
		// Alerts commit in the same transactions as the stats that count
		// them, but arrive on their own topic: wait for them too.
		alertsIn := d.alerts >= d.scored-d.byCat["normal"]
		line := d.progressLine(want, d.elapsed(pubStart))
		d.mu.Unlock()
		if tty {
			d.say("\r%s", line)
		}
		if done >= want && alertsIn {
			break
		}
		if done != last {
			last, lastChange = done, time.Now()
		} else if time.Since(lastChange) > d.stall {
			return nil, fmt.Errorf("stalled: %d of %d records scored after %s", done, want, time.Since(pubStart).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case err := <-errs:
			return nil, err
		case <-tick.C:
		}
	}
	if tty {
		d.say("\n")
	} else if !d.quiet {
		d.mu.Lock()
		d.say("%s\n", d.progressLine(want, d.elapsed(pubStart)))
		d.mu.Unlock()
	}
	stopDetectors()
	wg.Wait()
	stopReader()
	<-readerDone
	cl.Close()

	d.mu.Lock()
	defer d.mu.Unlock()
	sum := &demoSummary{
		Records:     want,
		Normal:      d.byCat["normal"],
		Verdicts:    d.alerts,
		DeadLetters: d.dead,
		ByCategory:  d.byCat,
		ByAttack:    d.byAttack,
		Detectors:   d.detectors,
		Partitions:  d.partitions,
		Model:       modelName,
		File:        name,
	}
	sum.BooksBalance = sum.Records == sum.Normal+sum.Verdicts+sum.DeadLetters
	sum.RecordsPerSecond = float64(d.scored+d.dead) / d.elapsed(pubStart).Seconds()
	if labelled > 0 {
		// Records labelled normal that got no alert were judged normal:
		// right at both granularities.
		tn := normals - d.fp
		bin := float64(tn+d.bin) / float64(labelled)
		cat := float64(tn+d.cat) / float64(labelled)
		sum.Accuracy.Binary, sum.Accuracy.Category = &bin, &cat
		sum.Accuracy.Labelled = labelled
	}
	if len(d.latencies) > 0 {
		slices.Sort(d.latencies)
		q := func(p float64) float64 { return d.latencies[int(p*float64(len(d.latencies)-1))] }
		sum.LatencyMS.P50, sum.LatencyMS.P99, sum.LatencyMS.Max = q(0.5), q(0.99), d.latencies[len(d.latencies)-1]
	}
	if out != "" {
		series := d.agg.Series()
		log := slog.New(slog.NewTextHandler(d.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		if _, err := writeReport(ctx, series, report.SeriesWindow(series, time.Local), report.Config{}, out, mf, log); err != nil {
			return nil, fmt.Errorf("report: %w", err)
		}
		sum.Report = out
	}
	sum.Seconds = time.Since(start).Seconds()
	if !sum.BooksBalance {
		return sum, fmt.Errorf("books do not balance: %d records != %d normal + %d verdicts + %d dead letters", sum.Records, sum.Normal, sum.Verdicts, sum.DeadLetters)
	}
	return sum, nil
}

func (d *demo) progressLine(want int64, el time.Duration) string {
	done := d.scored + d.dead
	var b strings.Builder
	fmt.Fprintf(&b, "scored %d/%d (%.0f/s)", done, want, float64(done)/el.Seconds())
	for _, c := range record.Categories {
		if c == record.CategoryNormal {
			continue
		}
		if n := d.byCat[c.String()]; n > 0 {
			fmt.Fprintf(&b, " %s %d", c, n)
		}
	}
	if d.dead > 0 {
		fmt.Fprintf(&b, " dead-letters %d", d.dead)
	}
	return b.String() + "   "
}

// elapsed returns the time from start to the last statistics message, or
// to now before the first one. d.mu must be held.
func (d *demo) elapsed(start time.Time) time.Duration {
	if d.lastStat.After(start) {
		return d.lastStat.Sub(start)
	}
	return time.Since(start)
}

// read consumes the detectors' outputs until ctx ends.
func (d *demo) read(ctx context.Context, cl *kgo.Client) {
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil || fs.IsClientClosed() {
			return
		}
		d.mu.Lock()
		fs.EachRecord(func(r *kgo.Record) {
			switch r.Topic {
			case demoStats:
				var s event.Stats
				if json.Unmarshal(r.Value, &s) != nil {
					return
				}
				d.agg.Add(s, r.Timestamp)
				d.scored += s.Records
				for k, v := range s.ByCategory {
					d.byCat[k] += v
				}
				for k, v := range s.ByAttack {
					d.byAttack[k] += v
				}
				d.lastStat = r.Timestamp
			case demoDead:
				d.dead++
			case demoAlerts:
				var a event.Alert
				if json.Unmarshal(r.Value, &a) != nil {
					return
				}
				d.alerts++
				if a.Label != "" {
					if a.Label == "normal" {
						d.fp++
					} else {
						d.bin++
						if a.Category == record.CategoryOf(a.Label).String() {
							d.cat++
						}
					}
				}
				d.latencies = append(d.latencies, float64(r.Timestamp.Sub(a.Time).Microseconds())/1000)
			}
		})
		d.mu.Unlock()
	}
}

// model loads modelPath, or trains the demo model: the default detector on
// the NSL-KDD training rows not in the shipped replay file (when the
// replay file is the shipped one), or on all of them.
func (d *demo) model(ctx context.Context, modelPath string, holdOut bool) (*model.Detector, string, error) {
	if modelPath != "" {
		m, err := model.LoadFile(modelPath)
		return m, modelPath, err
	}
	zr, err := gzip.NewReader(bytes.NewReader(data.NSLKDDTrain))
	if err != nil {
		return nil, "", err
	}
	ds, err := dataset.Read(zr, "KDDTrain+.txt.gz", dataset.Options{})
	if err != nil {
		return nil, "", err
	}
	name := "default detector trained on KDDTrain+"
	if holdOut {
		rows := make([]int, 0, ds.Len()-data.NSLKDDTrain20Rows)
		for i := data.NSLKDDTrain20Rows; i < ds.Len(); i++ {
			rows = append(rows, i)
		}
		ds = ds.Subset(rows)
		ds.Source = "KDDTrain+.txt.gz[25192:]"
		name = "default detector trained on KDDTrain+ rows 25,193-125,973 (disjoint from the replayed rows)"
	}
	d.say("training the demo model on %d rows...\n", ds.Len())
	t0 := time.Now()
	opts := model.DefaultTrainOptions()
	opts.Sources = []string{ds.Source}
	bar := newProgress(d.env.Stderr, "training", false)
	if bar != nil {
		opts.Progress = bar.ints
	}
	m, err := model.Train(ctx, ds, opts)
	bar.done()
	if err != nil {
		return nil, "", err
	}
	d.say("trained in %s\n", time.Since(t0).Round(10*time.Millisecond))
	return m, name, nil
}

// demoLines reads the replay file into lines (without line ends); "" is
// the shipped NSL-KDD 20% file.
func demoLines(file string) ([][]byte, string, error) {
	var r io.Reader
	name := file
	if file == "" {
		r = bytes.NewReader(data.NSLKDDTrain20)
		name = "KDDTrain+_20Percent.txt.gz (shipped)"
		file = ".gz"
	} else {
		f, err := os.Open(file)
		if err != nil {
			return nil, "", err
		}
		defer f.Close()
		r = f
	}
	if strings.HasSuffix(file, ".gz") {
		zr, err := gzip.NewReader(r)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", name, err)
		}
		r = zr
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var lines [][]byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if len(lines) == 0 {
		return nil, "", fmt.Errorf("%s: no records", name)
	}
	return lines, name, nil
}

func createTopics(ctx context.Context, addrs []string, partitions int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addrs...))
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if _, err := adm.CreateTopic(ctx, int32(partitions), 1, nil, demoTopic); err != nil {
		return fmt.Errorf("create topic %s: %w", demoTopic, err)
	}
	for _, t := range []string{demoAlerts, demoStats, demoDead} {
		if _, err := adm.CreateTopic(ctx, 1, 1, nil, t); err != nil {
			return fmt.Errorf("create topic %s: %w", t, err)
		}
	}
	return nil
}

func printDemoSummary(w io.Writer, s *demoSummary) {
	fmt.Fprintf(w, "\nnetsentinel demo: %s\n", s.File)
	fmt.Fprintf(w, "model:        %s\n", s.Model)
	fmt.Fprintf(w, "records in:   %d (%d detectors, %d partitions)\n", s.Records, s.Detectors, s.Partitions)
	fmt.Fprintf(w, "normal:       %d\n", s.Normal)
	fmt.Fprintf(w, "verdicts:     %d (alerts)\n", s.Verdicts)
	for _, c := range record.Categories {
		if c == record.CategoryNormal {
			continue
		}
		if n := s.ByCategory[c.String()]; n > 0 {
			fmt.Fprintf(w, "  %-8s    %d\n", c, n)
		}
	}
	fmt.Fprintf(w, "dead letters: %d\n", s.DeadLetters)
	balance := "yes"
	if !s.BooksBalance {
		balance = "NO"
	}
	fmt.Fprintf(w, "books balance (records = normal + verdicts + dead letters): %s\n", balance)
	if s.Accuracy.Binary != nil {
		fmt.Fprintf(w, "accuracy on %d labelled records: binary %.2f%%, category %.2f%%\n", s.Accuracy.Labelled, 100**s.Accuracy.Binary, 100**s.Accuracy.Category)
	}
	fmt.Fprintf(w, "throughput:   %.0f records/s\n", s.RecordsPerSecond)
	fmt.Fprintf(w, "latency (produce to alert): p50 %.1f ms, p99 %.1f ms\n", s.LatencyMS.P50, s.LatencyMS.P99)
	if s.Report != "" {
		fmt.Fprintf(w, "report:       %s/report.html\n", s.Report)
	}
	fmt.Fprintf(w, "total time:   %.1fs\n", s.Seconds)
}
