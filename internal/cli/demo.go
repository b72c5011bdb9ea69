package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"

	"github.com/netsentinel/netsentinel/data"
	"github.com/netsentinel/netsentinel/internal/broker"
	"github.com/netsentinel/netsentinel/internal/dashboard"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/report"
	"github.com/netsentinel/netsentinel/internal/stream"
)

var cmdDemo = &Command{
	Name:      "demo",
	UsageLine: "demo [--file F] [--model M] [--rate N] [--detectors N] [--json] [--out DIR] [--smtp HOST:PORT --mail-to ADDR --mail-from ADDR ...] [--serve ADDR]",
	Short:     "run the whole pipeline on one machine, no setup: broker, model, publish, detect, report",
	Long: `
Demo is the one-command tour. In one process it:

  1. starts the embedded Kafka-protocol broker on a free loopback port;
  2. trains the demo model (the default detector) on the NSL-KDD training
     rows that are NOT in the replayed file - or loads --model;
  3. publishes the replay file (default: the shipped NSL-KDD 20% file,
     25,192 labelled records, embedded in the binary) into a topic;
  4. runs --detectors detector instances in one consumer group, exactly
     once, writing alerts, per-minute statistics and dead letters (and
     incidents with --alerts both, the default with --serve);
  5. reads those outputs back, shows live progress, and ends with a
     summary: records in, verdicts by category, dead letters, accuracy
     against the labels, throughput and latency (produce to alert);
  6. writes a report of what it processed to --out (report.html,
     summary.json, PNG charts) and, with --smtp, mails it.

The replay starts once the detectors' group has settled (every partition
owned), so the throughput and latency reported are the pipeline's, not
the group join's; --cpuprofile profiles the run from the broker's start.

With --json the summary is one JSON object on stdout. The books are
checked: records = normal + verdicts + dead letters; demo fails if they do
not balance.

With --serve ADDR (e.g. 127.0.0.1:9110) the demo also serves the live
dashboard (see 'netsentinel dashboard -h') at ADDR while it runs, prints
its URL, and after the summary keeps running - broker, detectors and
dashboard - until interrupted.
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
	demoInc    = "netsentinel-demo-incidents"
	demoGroup  = "netsentinel-demo"
	// demoJoinWait bounds the wait for the detectors to join their group
	// before the replay starts.
	demoJoinWait = 15 * time.Second
)

func demoFlags(fs *flag.FlagSet) RunFunc {
	file := fs.String("file", "", "replay this KDD'99 / NSL-KDD `file` (plain or .gz) instead of the shipped NSL-KDD 20% file")
	modelPath := fs.String("model", "", "use this model `file` instead of training the demo model")
	rate := fs.Float64("rate", 0, "publish at most `N` records per second (0: as fast as possible)")
	detectors := fs.Int("detectors", 2, "detector instances in the consumer group")
	partitions := fs.Int("partitions", 4, "partitions of the records topic")
	listen := fs.String("listen", "127.0.0.1:0", "embedded broker `address` (port 0: a free port)")
	jsonOut := fs.Bool("json", false, "print the summary as one JSON object on stdout")
	out := fs.String("out", defaultReportDir, "`directory` for the closing report (empty: no report)")
	timeout := fs.Duration("stall-timeout", time.Minute, "fail if no record is scored for this long")
	mf := addMailFlags(fs)
	alerts := fs.String("alerts", "", "what the detectors write about attacks: `both` (per-record alerts and incidents, as detect --alerts both) or records (alerts only); default both with --serve (the dashboard shows the incidents), records without")
	serve := fs.String("serve", "", "also serve the live dashboard at this `address` and keep running after the summary until interrupted")
	sf := addDashboardServeFlags(fs)
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile (pprof) of the pipeline, from broker start to summary, to `file`")
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
		d := &demo{env: env, detectors: *detectors, partitions: *partitions, rate: *rate, quiet: *jsonOut, stall: *timeout,
			cpuProfile: *cpuProfile}
		mode := *alerts
		if mode == "" {
			mode = "records"
			if *serve != "" {
				mode = "both"
			}
		}
		switch mode {
		case "both":
			d.incidents = true
		case "records":
		default:
			return Usagef("--alerts %q: want both or records (the demo's summary needs the per-record alerts)", mode)
		}
		if *serve != "" {
			so, err := sf.options(*serve)
			if err != nil {
				return err
			}
			d.serve = &so
		}
		printSum := func(sum *demoSummary) error {
			if *jsonOut {
				return json.NewEncoder(env.Stdout).Encode(sum)
			}
			printDemoSummary(env.Stdout, sum)
			return nil
		}
		d.summarized = printSum
		_, err := d.run(ctx, *file, *modelPath, *listen, *out, mf)
		return err
	}
}

type demo struct {
	env        *Env
	detectors  int
	partitions int
	rate       float64
	quiet      bool
	stall      time.Duration
	// serve, when set, is where the dashboard is served; the demo then
	// keeps running after the summary until ctx ends.
	serve *dashboard.ServerOptions
	// incidents makes the detectors group verdicts into incidents too.
	incidents bool
	// summarized is called with the summary once it is complete.
	summarized func(*demoSummary) error
	// cpuProfile, when set, names the file for a CPU profile of the
	// pipeline (the model is ready when it starts).
	cpuProfile string
}

// say prints progress to stderr.
func (d *demo) say(format string, args ...any) {
	fmt.Fprintf(d.env.Stderr, format, args...)
}

func (d *demo) run(ctx context.Context, file, modelPath, listen, out string, mf *mailFlags) (sum *demoSummary, err error) {
	start := time.Now()
	// The replay records, kept as the lines they are.
	lines, name, err := demoLines(file)
	if err != nil {
		return nil, err
	}
	labels := map[string]int64{}
	var labelled int64
	var rec record.Record
	for _, l := range lines {
		if record.Decode(l, &rec) == nil && rec.Label != "" {
			labels[rec.Label]++
			labelled++
		}
	}

	det, modelName, err := d.model(ctx, modelPath, file == "")
	if err != nil {
		return nil, err
	}

	if d.cpuProfile != "" {
		stopProfile, err := startCPUProfile(d.cpuProfile)
		if err != nil {
			return nil, err
		}
		defer func() {
			if perr := stopProfile(); err == nil {
				err = perr
			}
		}()
	}

	b, err := broker.Start(ctx, broker.Config{Listen: listen, Partitions: d.partitions})
	if err != nil {
		return nil, fmt.Errorf("embedded broker: %w", err)
	}
	// One teardown on every path: stop the detectors and the output
	// reader, wait for them, then close the broker.
	runCtx, stop := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(runCtx)
	defer func() {
		stop()
		if werr := g.Wait(); err == nil && werr != nil {
			err = werr
		}
		b.Close()
	}()
	addrs := b.Addrs()
	d.say("embedded broker on %s (in memory for the demo; netsentinel broker --data-dir DIR keeps records across restarts and stays exactly-once through kill -9)\n", strings.Join(addrs, ","))
	ccfg := stream.ClientConfig{Brokers: addrs}
	opts, err := stream.ClientOptions(ccfg)
	if err != nil {
		return nil, err
	}
	topics := map[string]int32{demoTopic: int32(d.partitions), demoAlerts: 1, demoStats: 1, demoDead: 1}
	var incOpts stream.IncidentOptions
	if d.incidents {
		topics[demoInc] = 1
		incOpts.Topic = demoInc
	}
	err = stream.CreateTopics(ctx, opts, topics)
	if err != nil {
		return nil, err
	}

	if d.serve != nil {
		dash, err := dashboard.New(dashboard.Options{Kafka: opts, AlertsTopic: demoAlerts, StatsTopic: demoStats,
			DeadLetterTopic: demoDead, IncidentsTopic: incOpts.Topic, InputTopic: demoTopic, Group: demoGroup,
			Logger: slog.New(slog.NewTextHandler(d.env.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
		if err != nil {
			return nil, err
		}
		srv, err := dashboard.NewServer(dash.Handler(), *d.serve)
		if err != nil {
			return nil, Usagef("%w", err)
		}
		if err := srv.Start(); err != nil {
			return nil, err
		}
		defer func() {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(sctx)
		}()
		g.Go(func() error { return dash.Run(gctx) })
		w := d.env.Stdout
		if d.quiet {
			w = d.env.Stderr // stdout holds only the JSON summary
		}
		fmt.Fprintf(w, "dashboard at %s\n", srv.URL())
	}

	for i := range d.detectors {
		sd, err := stream.New(stream.Options{
			Client:          ccfg,
			Topic:           demoTopic,
			Group:           demoGroup,
			AlertsTopic:     demoAlerts,
			StatsTopic:      demoStats,
			DeadLetterTopic: demoDead,
			Incidents:       incOpts,
			Instance:        fmt.Sprintf("demo-%d", i+1),
			Scorer:          det,
			Registerer:      prometheus.NewRegistry(),
			SessionTimeout:  6 * time.Second,
			CommitPause:     stream.DefaultOptions().CommitPause,
		})
		if err != nil {
			return nil, err
		}
		g.Go(func() error {
			if err := sd.Run(gctx); err != nil && gctx.Err() == nil {
				return fmt.Errorf("detector %s: %w", sd.Instance(), err)
			}
			return nil
		})
	}
	tally := newDemoTally()
	g.Go(func() error {
		return stream.FollowOutputs(gctx, opts, stream.OutputTopics{Alerts: demoAlerts, Stats: demoStats, DeadLetters: demoDead}, tally.handlers())
	})

	// cause returns the failure of a detector or the reader, which
	// cancels gctx, in preference to err, which may only follow from it.
	cause := func(err error) error {
		stop()
		if werr := g.Wait(); werr != nil {
			return werr
		}
		return err
	}

	// The replay starts once the detectors' group has settled (about a
	// second on the embedded broker: kgo's cooperative rebalancing moves
	// partitions in two rounds), so that the throughput and latency shown
	// are the pipeline's, not the group join's. A join that takes longer
	// than demoJoinWait is not waited for.
	jctx, cancelJoin := context.WithTimeout(gctx, demoJoinWait)
	err = stream.AwaitGroup(jctx, opts, demoGroup, demoTopic, min(d.detectors, d.partitions))
	cancelJoin()
	if err != nil && gctx.Err() != nil {
		return nil, cause(gctx.Err())
	}

	pubStart := time.Now()
	pub, err := stream.NewPublisher(stream.PublisherOptions{Client: ccfg, Topic: demoTopic, Rate: d.rate})
	if err != nil {
		return nil, err
	}
	d.say("publishing %d records from %s into %s (%d partitions), %d detectors scoring\n", len(lines), name, demoTopic, d.partitions, d.detectors)
	var perr error
	for _, l := range lines {
		if perr = pub.Publish(gctx, nil, l); perr != nil {
			break
		}
	}
	ps, err := pub.Close(ctx)
	if perr == nil {
		perr = err
	}
	if perr != nil {
		return nil, cause(fmt.Errorf("publish: %w", perr))
	}
	want := ps.Delivered
	if err := d.await(gctx, tally, want, pubStart); err != nil {
		return nil, cause(err)
	}
	if d.serve == nil {
		stop()
		if err := g.Wait(); err != nil {
			return nil, err
		}
	}

	tally.mu.Lock()
	defer tally.mu.Unlock()
	sum = &demoSummary{
		Records:     want,
		Normal:      tally.byCat["normal"],
		Verdicts:    tally.alerts,
		DeadLetters: tally.dead,
		ByCategory:  tally.byCat,
		ByAttack:    tally.byAttack,
		Detectors:   d.detectors,
		Partitions:  d.partitions,
		Model:       modelName,
		File:        name,
	}
	sum.BooksBalance = sum.Records == sum.Normal+sum.Verdicts+sum.DeadLetters
	sum.RecordsPerSecond = float64(tally.scored+tally.dead) / tally.elapsed(pubStart).Seconds()
	if labelled > 0 {
		acc := tally.accuracy(labels)
		bin, cat := float64(acc.Binary.Accuracy), float64(acc.Category.Accuracy)
		sum.Accuracy.Binary, sum.Accuracy.Category = &bin, &cat
		sum.Accuracy.Labelled = labelled
	}
	if l := tally.latencies; len(l) > 0 {
		slices.Sort(l)
		q := func(p float64) float64 { return l[int(p*float64(len(l)-1))] }
		sum.LatencyMS.P50, sum.LatencyMS.P99, sum.LatencyMS.Max = q(0.5), q(0.99), l[len(l)-1]
	}
	if out != "" {
		series := tally.agg.Series()
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
	if d.summarized != nil {
		if err := d.summarized(sum); err != nil {
			return sum, err
		}
	}
	if d.serve != nil {
		d.say("the demo keeps running with its dashboard; interrupt (Ctrl-C) to stop\n")
		tally.mu.Unlock()
		<-gctx.Done()
		tally.mu.Lock()
		if ctx.Err() == nil {
			// A detector, the reader or the dashboard failed.
			return sum, g.Wait()
		}
	}
	return sum, nil
}

// await shows progress until every one of want records is accounted for,
// ctx ends, or no record is scored for d.stall.
func (d *demo) await(ctx context.Context, t *demoTally, want int64, pubStart time.Time) error {
	tty := !d.quiet && isTerminal(d.env.Stderr)
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	last, lastChange := int64(-1), time.Now()
	for {
		t.mu.Lock()
		n, done := t.scored+t.dead, t.done(want)
		line := t.progressLine(want, t.elapsed(pubStart))
		t.mu.Unlock()
		if tty {
			d.say("\r%s", line)
		}
		if done {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		} else if time.Since(lastChange) > d.stall {
			return fmt.Errorf("stalled: %d of %d records scored after %s", n, want, time.Since(pubStart).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	if tty {
		d.say("\n")
	} else if !d.quiet {
		t.mu.Lock()
		d.say("%s\n", t.progressLine(want, t.elapsed(pubStart)))
		t.mu.Unlock()
	}
	return nil
}

// model loads modelPath, or trains the demo model: the default detector on
// the NSL-KDD training rows not in the shipped replay file (when the
// replay file is the shipped one), or on all of them.
func (d *demo) model(ctx context.Context, modelPath string, holdOut bool) (*model.Detector, string, error) {
	if modelPath != "" {
		m, err := model.LoadFile(modelPath)
		return m, modelPath, err
	}
	zr, err := dataset.NewReader(bytes.NewReader(data.NSLKDDTrain), "KDDTrain+.txt.gz")
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

// startCPUProfile starts a CPU profile written to path; the function it
// returns stops it and closes the file.
func startCPUProfile(path string) (stop func() error, err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile %s: %w", path, err)
	}
	return func() error {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		return nil
	}, nil
}

// demoLines reads the replay file (plain or gzip) into lines (without
// line ends); "" is the shipped NSL-KDD 20% file.
func demoLines(file string) ([][]byte, string, error) {
	var in *dataset.Reader
	var err error
	name := file
	if file == "" {
		name = "KDDTrain+_20Percent.txt.gz (shipped)"
		in, err = dataset.NewReader(bytes.NewReader(data.NSLKDDTrain20), name)
	} else {
		in, err = dataset.Open(file)
	}
	if err != nil {
		return nil, "", err
	}
	defer in.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	var lines [][]byte
	for sc.Scan() {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		lines = append(lines, bytes.Clone(sc.Bytes()))
	}
	if err := sc.Err(); err != nil {
		var re *dataset.ReadError
		if errors.As(err, &re) {
			return nil, "", err
		}
		return nil, "", fmt.Errorf("%s: %w", name, err)
	}
	if len(lines) == 0 {
		return nil, "", fmt.Errorf("%s: no records", name)
	}
	return lines, name, nil
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
