package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/model/novelty"
	"github.com/netsentinel/netsentinel/internal/stream"
	"github.com/netsentinel/netsentinel/internal/web"
)

var cmdDetect = &Command{
	Name:      "detect",
	UsageLine: "detect --brokers HOST:PORT,... --topic T --group G --model M [--alerts-topic A] [--stats-topic S] [--dead-letter-topic D] [--listen ADDR] [--instance NAME] [--learn DURATION --learn-data FILE --learn-out M2]",
	Short:     "score a Kafka topic of connection records, exactly once, until stopped",
	Long: `
Detect joins consumer group --group on --topic and scores every record
(CSV line or JSON object, detected per record) with the model. For each
poll it writes, in one Kafka transaction together with the input offsets:

  - to --alerts-topic, a JSON alert for every record that is not normal
    (attack, category, probabilities, novelty, source topic/partition/
    offset and timestamp, the features, and the record's label if it had one);
  - to --stats-topic, per-minute counts by category and attack type and of
    dead letters (several messages per minute: readers sum them);
  - to --dead-letter-topic, every record that fails to decode, with its
    original bytes, the reason and its source position.

With --alerts incidents (the default) the per-record alerts are replaced
by incidents on --incidents-topic: verdicts grouped by attack and source
and destination (or service and flag, for records without addresses),
published when an incident opens, at most every --incident-update while it
grows, and when it closes after --incident-quiet without verdicts. Their
state is kept in a compacted changelog topic written in the same
transaction. --rules names a YAML file of allow-list entries,
suppressions and thresholds (limit, threshold or both; by_src, by_dst or
by_rule); a verdict a rule keeps out of incidents is still counted in the
statistics, and under the rule's name in by_rule. --alerts records writes
only per-record alerts, both writes both.

An empty topic name turns that output off. Because outputs and offsets
commit atomically (exactly once), a crash at any point - kill -9 included -
neither loses nor repeats a verdict, count or dead letter. Start several
detectors with the same --group (each with its own --instance) to share the
partitions; one that dies is replaced after --session-timeout.

Every alert and statistics message names the model that scored it by its
fingerprint (the first 12 hex digits of the model file's SHA-256). Records
whose service or flag the schema lacks are scored as "other" / "OTH";
their alerts carry unseen_service / unseen_flag, the statistics count them
under "unseen", and so does netsentinel_detect_unseen_values_total.

With --adapt the model's novelty part also learns the site's own normal
traffic from the records the classifier calls normal with high confidence
(docs/validation.md): the learned profile is kept in memory only, so a
restart or a model reload starts again from the trained profile and
rebuilds it from the traffic.

Detect runs until SIGINT or SIGTERM, then finishes its open transaction,
leaves the group and exits. SIGHUP reloads the model file (the next batch
is scored by the new model) and the rules file; a file that fails to load
is reported and the old one kept. A detector that makes no progress while records wait (or
cannot reach Kafka) logs a warning naming the error every few seconds, and
after --stall-timeout /-/healthy answers 503 so that a supervisor can
restart it; a Kafka session stuck that long while the broker answers and
records wait is closed and recreated by the detector itself. It serves /metrics (Prometheus), /-/healthy and /-/ready on
--listen ("none" to disable); netsentinel_detect_model_info names the
fingerprint of the model in use.

LEARNING. With --learn DURATION detect learns this site's own normal
traffic, as 'train --baseline' does from a file: for DURATION from its
start it scores and alerts with its model as usual and keeps a uniform
random sample (at most --learn-max-records) of the records it commits:
every record that decodes, with or without a connection identity (those
without addresses escape the source cap and count as no source), its
label, if any, ignored. Then, in the background (the forest on half the
cores), while it goes on scoring with the old model, it retrains on
--learn-data with the sample as the baseline (the same code as 'train
--baseline', with the current model's algorithm, hyper-parameters, seed
and thresholds and train's novelty defaults), writes the model to
--learn-out atomically and the baseline to --learn-baseline-out, and
scores with the new model from the next transaction on: every record is
scored once, by one model, and the statistics and alerts name the new
fingerprint. The log shows the progress, every guard's decision and the
'netsentinel train' command that gives the same model. A later SIGHUP
reloads --learn-out. With --learn-every, a new period starts that long
after the previous one's start, and a restart with --learn learns
afresh: each time the model is retrained from --learn-data, and the new
baseline replaces the last one (each period faces the guards below
anew).

Whatever is on the network while detect learns is taken for normal, an
attacker included. The guards, each with its limit:
  - trim: records that the current model (as its file holds it), or a
    model trained on --learn-data alone, flags with an attack probability
    >= --learn-trim are left out (the log says how many of each; the
    written baseline is what the current model's trim leaves). It catches
    what resembles known attacks, not a novel one nor a slow or careful
    attacker.
  - caps: no source address may make up more than --learn-max-source-share
    of the baseline, nor one destination address and service more than
    --learn-max-dest-share; the excess is dropped at random (logged). A
    noisy attacker is cut down, not removed; one with many addresses, or
    records without addresses, escape the source cap.
  - minimums: fewer than --learn-min-records connections (after the caps
    and the trim) or --learn-min-sources distinct source addresses keep
    the old model. They guard against a baseline too small to say what
    is normal, not against its content.
  - check: --learn-check of the --learn-data rows are held back; the
    learned model must flag at least --learn-min-detection of each attack
    category's held-back rows (or as many as the model trained without the
    baseline does), else it is refused and the old model kept (logged as
    an error). It catches a baseline that teaches known attack patterns as
    normal, not one that teaches an attack the training data lacks.
  - memory: the sample is bounded by --learn-max-records (about 0.5 KiB a
    record); the log says when it is full.
The state is in netsentinel_detect_learning{state} (collecting, training,
learned, refused, failed, stopped); netsentinel_detect_learn_seen_records
and netsentinel_detect_learn_sample_records count the records consumed
during the period and kept in the sample.

Several detectors in one group each see only their partitions (the
sensor keys records by destination host). A detector with --learn learns
from the partitions it holds during the period (the log lists them, and
warns when the sample lacks some of the topic's) and writes its own
--learn-out: give --learn to one detector, started alone
for the learning period so that it sees the whole site, and point the
others to its model (--model, then SIGHUP); or give each its own
--learn-out, to learn the hosts whose partitions it scores.
`,
	Flags: detectFlags,
}

func detectFlags(fs *flag.FlagSet) RunFunc {
	kf := addKafkaFlags(fs)
	def := stream.DefaultOptions()
	topic := fs.String("topic", stream.DefaultTopic, "input `topic` of connection records")
	group := fs.String("group", stream.DefaultGroup, "consumer `group`")
	modelPath := fs.String("model", "", "model `file` written by 'netsentinel train' (required)")
	alerts := fs.String("alerts-topic", stream.DefaultAlertsTopic, "`topic` for alerts (empty: none)")
	stats := fs.String("stats-topic", stream.DefaultStatsTopic, "`topic` for per-minute statistics (empty: none)")
	dead := fs.String("dead-letter-topic", stream.DefaultDeadLetterTopic, "`topic` for records that fail to decode (empty: none)")
	listen := fs.String("listen", web.DefaultListen, "`address` for /metrics, /-/healthy and /-/ready (none: off)")
	instance := fs.String("instance", "", "this detector's `name`: unique among running members, and best kept across restarts so that a restart fences a crashed predecessor at once (default: host-pid)")
	maxPoll := fs.Int("max-poll-records", def.MaxPollRecords, "most records per transaction")
	commitPause := fs.Duration("commit-pause", def.CommitPause, "pause after committing a batch smaller than --max-poll-records, so the broker finishes the transaction before the next one (0: none)")
	sessionTimeout := fs.Duration("session-timeout", def.SessionTimeout, "group session timeout: how soon a dead detector's partitions move (the broker's group.min.session.timeout.ms is the floor)")
	txTimeout := fs.Duration("transaction-timeout", def.TransactionTimeout, "how long a crashed detector's open transaction can hold its partitions when no detector of the same --instance restarts to fence it; must exceed one batch's time")
	stallTimeout := fs.Duration("stall-timeout", def.StallTimeout, "/-/healthy fails after this long without progress (no committed transaction while records wait, or Kafka unreachable); a session stuck this long while Kafka answers and records wait is recreated")
	fromLatest := fs.Bool("from-latest", false, "a new group starts at the end of the topic instead of the beginning")
	static := fs.Bool("static-membership", def.StaticMembership, "join as static member --instance (only with --instance): a restart within --session-timeout resumes without a rebalance and fences the crashed predecessor's transaction, but a stopped detector's partitions wait --session-timeout")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	adapt := fs.Bool("adapt", false, "let the model's novelty part learn this site's normal traffic from records the classifier calls normal with high confidence (with forgetting, a bounded rate and a cap per service; kept in memory: a restart or model reload rebuilds it from the traffic)")
	lf := addLearnFlags(fs)
	incf := incidentFlags{
		mode:      fs.String("alerts", "incidents", "what to write about attacks: `incidents` (grouped, on --incidents-topic), records (one alert per record, on --alerts-topic) or both"),
		topic:     fs.String("incidents-topic", stream.DefaultIncidentsTopic, "`topic` for incident messages"),
		changelog: fs.String("incidents-changelog-topic", "", "compacted `topic` keeping the incident state (default netsentinel-<group>-incidents-changelog)"),
		rules:     fs.String("rules", "", "YAML `file` of allow-list entries, suppressions and thresholds (reloaded on SIGHUP)"),
		update:    fs.Duration("incident-update", 5*time.Second, "least time between two messages about one incident"),
		quiet:     fs.Duration("incident-quiet", time.Minute, "an incident without verdicts for this long is closed"),
	}
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if *modelPath == "" {
			return Usagef("--model is required")
		}
		var level slog.Level
		if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
			return Usagef("--log-level: %w", err)
		}
		ccfg, err := kf.config()
		if err != nil {
			return err
		}
		log := slog.New(slog.NewTextHandler(env.Stderr, &slog.HandlerOptions{Level: level}))
		alertsTopic, incOpts, stopRules, err := incf.options(*alerts, log)
		if err != nil {
			return err
		}
		defer stopRules()
		lcfg, learnOn, err := lf.config(*topic)
		if err != nil {
			return err
		}
		m, fingerprint, err := loadModel(*modelPath, *adapt)
		if err != nil {
			return err
		}

		reg := prometheus.NewRegistry()
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		cur := newCurrentModel(*modelPath, m, fingerprint, reg)
		var lrn *learner
		if learnOn {
			if lrn, err = newLearner(lcfg, log, reg); err != nil {
				return err
			}
		}
		var d *stream.Detector
		var srv *web.Server
		if *listen != "none" && *listen != "" {
			srv = web.New(web.Options{Listen: *listen, Gatherer: reg, Logger: log, Healthy: func() error {
				if d == nil {
					return nil
				}
				return d.Health()
			}})
		}
		o := def
		o.Client, o.Topic, o.Group = ccfg, *topic, *group
		o.AlertsTopic, o.StatsTopic, o.DeadLetterTopic = alertsTopic, *stats, *dead
		o.Incidents = incOpts
		o.Instance, o.Scorer, o.Model = *instance, m, fingerprint
		o.Registerer, o.Logger = reg, log
		o.MaxPollRecords, o.CommitPause, o.SessionTimeout, o.TransactionTimeout = *maxPoll, *commitPause, *sessionTimeout, *txTimeout
		o.StallTimeout, o.FromLatest, o.StaticMembership = *stallTimeout, *fromLatest, *static
		o.OnReady = func(ready bool) {
			if srv == nil {
				return
			}
			if ready {
				srv.SetStatus(web.Ready)
			} else {
				srv.SetStatus(web.NotReady)
			}
		}
		if lrn != nil {
			o.Tap = lrn.col.tap
		}
		d, err = stream.New(o)
		if err != nil {
			return Usagef("%w", err)
		}
		if srv != nil {
			if err := srv.Start(); err != nil {
				return err
			}
			log.Info("serving metrics", "addr", "http://"+srv.Addr()+"/metrics")
		}
		stopReload := reloadOnHUP(cur, *adapt, d, log)
		defer stopReload()
		log.Info("detector starting", "topic", *topic, "group", *group, "instance", d.Instance(), "model", *modelPath, "fingerprint", fingerprint)
		lctx, stopLearning := context.WithCancel(ctx)
		var learning sync.WaitGroup
		if lrn != nil {
			lrn.current = cur.get
			lrn.swap = func(path string) (string, error) { return cur.load(path, *adapt, d) }
			lrn.partitions = func(ctx context.Context) (int, error) { return stream.Partitions(ctx, ccfg, *topic) }
			learning.Go(func() { lrn.run(lctx) })
		}
		runErr := d.Run(ctx)
		stopLearning()
		learning.Wait()
		if srv != nil {
			srv.SetStatus(web.Stopping)
		}
		t := d.Totals()
		log.Info("detector stopped", "records", t.Records, "alerts", t.Alerts, "normal", t.Normal,
			"dead_letters", t.DeadLetters, "committed", t.Committed, "aborted", t.Aborted, "restarts", t.Restarts)
		if srv != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
				log.Warn("http shutdown", "err", err)
			}
		}
		if runErr != nil {
			return fmt.Errorf("detector: %w", runErr)
		}
		return nil
	}
}

// loadModel loads a model file and returns it with its fingerprint: the
// first 12 hex digits of the file's SHA-256.
func loadModel(path string, adapt bool) (*model.Detector, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("load model: %w", err)
	}
	m, err := model.Unmarshal(b)
	if err != nil {
		return nil, "", fmt.Errorf("load model %s: %w", path, err)
	}
	if adapt {
		if err := m.Adapt(novelty.AdaptConfig{}, 0); err != nil {
			return nil, "", fmt.Errorf("--adapt with model %s: %w", path, err)
		}
	}
	sum := sha256.Sum256(b)
	return m, hex.EncodeToString(sum[:6]), nil
}

// currentModel is the model detect scores with, its fingerprint and the
// file a SIGHUP reloads; netsentinel_detect_model_info names the
// fingerprint.
type currentModel struct {
	// loading serialises load (a SIGHUP and a learned model at once).
	loading sync.Mutex
	mu      sync.Mutex
	m       *model.Detector
	fp      string
	path    string
	info    *prometheus.GaugeVec
}

func newCurrentModel(path string, m *model.Detector, fp string, reg prometheus.Registerer) *currentModel {
	c := &currentModel{path: path, info: prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: "netsentinel", Subsystem: "detect", Name: "model_info",
		Help: "1 for the fingerprint of the model in use (the first 12 hex digits of the model file's SHA-256)."}, []string{"fingerprint"})}
	reg.MustRegister(c.info)
	c.set(path, m, fp)
	return c
}

func (c *currentModel) set(path string, m *model.Detector, fp string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.path, c.m, c.fp = path, m, fp
	c.info.Reset()
	c.info.WithLabelValues(fp).Set(1)
}

func (c *currentModel) get() (*model.Detector, string, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m, c.fp, c.path
}

// load loads the model file at path and hands it to d (see loadModel);
// path becomes the file a SIGHUP reloads.
func (c *currentModel) load(path string, adapt bool, d *stream.Detector) (string, error) {
	c.loading.Lock()
	defer c.loading.Unlock()
	m, fp, err := loadModel(path, adapt)
	if err != nil {
		return "", err
	}
	d.SetScorer(m, fp)
	c.set(path, m, fp)
	return fp, nil
}

// reloadOnHUP reloads the current model's file on every SIGHUP and hands it
// to d, until the returned stop function is called; with adapt its novelty
// part starts learning afresh. A file that fails to load is reported and
// the current model kept.
func reloadOnHUP(cur *currentModel, adapt bool, d *stream.Detector, log *slog.Logger) (stop func()) {
	return onHUP(func() {
		cur.mu.Lock()
		path := cur.path
		cur.mu.Unlock()
		fp, err := cur.load(path, adapt, d)
		if err != nil {
			log.Error("model reload failed; keeping the current model", "model", path, "err", err)
			return
		}
		log.Info("model reloaded", "model", path, "fingerprint", fp)
	})
}
