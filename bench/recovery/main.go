// Command recovery measures how long netsentinel's detectors stop
// committing after a fault, against a real Apache Kafka broker started with
// scripts/kafka.sh (so that it can be killed).
//
//	go run ./bench/recovery -bin bin/netsentinel [-scenario all] [-rate 2000] [-detect-flags "..."]
//
// Each scenario starts a fresh private broker (or a 3-node cluster with
// -cluster 3), a 4-partition input topic, two `netsentinel detect`
// processes in one group and a steady publisher (-rate records/s). Once
// every partition commits, it injects one fault:
//
//	kill     kill -9 one detector; the other must take its partitions over
//	restart  kill -9 one detector and start a new one under a new instance name
//	broker   kill -9 the broker (every node with -cluster), start it again
//
// and records, for each input partition, the time from the fault (for
// "broker": from the broker answering again) to the first advance of the
// group's committed offset. The stall printed is the largest of those: how
// long the slowest partition went without work while records waited. The
// group's offsets are read every 100 ms, so figures are ±0.1 s.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

var (
	bin         = flag.String("bin", "bin/netsentinel", "netsentinel `binary` to measure")
	scenario    = flag.String("scenario", "all", "kill, restart, broker or all")
	rate        = flag.Int("rate", 2000, "records per second published during the run")
	detectFlags = flag.String("detect-flags", "", "extra flags for `netsentinel detect`, space-separated")
	script      = flag.String("kafka", "scripts/kafka.sh", "path of scripts/kafka.sh")
	data        = flag.String("data", "data/KDDTrain+_20Percent.txt.gz", "records to publish (looped)")
	repeat      = flag.Int("repeat", 1, "runs per scenario")
	keep        = flag.Bool("keep", false, "keep the work directory (detector and broker logs)")
)

const partitions = 4

func main() {
	flag.Parse()
	scen := []string{"kill", "restart", "broker"}
	if *scenario != "all" {
		scen = strings.Split(*scenario, ",")
	}
	lines, err := readLines(*data, 20000)
	if err != nil {
		fatal(err)
	}
	work, err := os.MkdirTemp("", "netsentinel-recovery-")
	if err != nil {
		fatal(err)
	}
	if !*keep {
		defer os.RemoveAll(work)
	} else {
		fmt.Fprintln(os.Stderr, "recovery: work directory", work)
	}
	model := filepath.Join(work, "m.model")
	if out, err := exec.Command(*bin, "train", "--data", *data, "--out", model).CombinedOutput(); err != nil {
		fatal(fmt.Errorf("train: %v\n%s", err, out))
	}
	fmt.Printf("%-8s %-4s %10s  %s\n", "scenario", "run", "stall", "per partition (s)")
	for _, s := range scen {
		for i := range *repeat {
			dir := filepath.Join(work, fmt.Sprintf("%s-%d", s, i))
			stall, per, err := run(s, dir, model, lines)
			if err != nil {
				fatal(fmt.Errorf("%s run %d: %w", s, i+1, err))
			}
			fmt.Printf("%-8s %-4d %9.1fs  %s\n", s, i+1, stall.Seconds(), per)
		}
	}
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "recovery:", err)
	os.Exit(1)
}

func readLines(path string, n int) ([][]byte, error) {
	zr, err := dataset.Open(path)
	if err != nil {
		return nil, err
	}
	defer zr.Close()
	sc := bufio.NewScanner(zr)
	var out [][]byte
	for len(out) < n && sc.Scan() {
		out = append(out, append([]byte(nil), sc.Bytes()...))
	}
	return out, sc.Err()
}

func kafka(dir string, args ...string) (string, error) {
	cmd := exec.Command(*script, append(args, "--dir", dir)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	return strings.TrimSpace(string(out)), err
}

type detector struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startDetector(dir, brokers, model, instance string) (*detector, error) {
	logf, err := os.Create(filepath.Join(dir, instance+".log"))
	if err != nil {
		return nil, err
	}
	args := []string{"detect", "--brokers", brokers, "--topic", "in", "--group", "g", "--model", model,
		"--alerts-topic", "alerts", "--stats-topic", "stats", "--dead-letter-topic", "dead", "--listen", "none",
		"--instance", instance}
	args = append(args, strings.Fields(*detectFlags)...)
	cmd := exec.Command(*bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &detector{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(d.done) }()
	return d, nil
}

func (d *detector) kill() {
	_ = d.cmd.Process.Signal(syscall.SIGKILL)
	<-d.done
}

func (d *detector) stop() {
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
	case <-time.After(40 * time.Second):
		d.kill()
	}
}

// run runs one scenario and returns the longest per-partition stall.
func run(scen, dir, model string, lines [][]byte) (time.Duration, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return 0, "", err
	}
	bdir := filepath.Join(dir, "broker")
	if _, err := kafka(bdir, "start", "--port", "auto"); err != nil {
		return 0, "", fmt.Errorf("start broker: %w", err)
	}
	defer func() { _, _ = kafka(bdir, "stop", "--kill") }()
	brokers, err := kafka(bdir, "brokers")
	if err != nil {
		return 0, "", err
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.DefaultProduceTopic("in"))
	if err != nil {
		return 0, "", err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := adm.CreateTopic(ctx, partitions, 1, nil, "in"); err != nil {
		return 0, "", err
	}
	if _, err := adm.CreateTopics(ctx, 1, 1, nil, "alerts", "stats", "dead"); err != nil {
		return 0, "", err
	}

	// Steady publisher.
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	wg.Go(func() {
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		per := max(1, *rate/100)
		i := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			for range per {
				cl.Produce(ctx, &kgo.Record{Value: lines[i%len(lines)]}, nil)
				i++
			}
		}
	})

	a, err := startDetector(dir, brokers, model, "a")
	if err != nil {
		return 0, "", err
	}
	defer a.kill()
	b, err := startDetector(dir, brokers, model, "b")
	if err != nil {
		return 0, "", err
	}
	defer b.kill()

	w := newWatcher(brokers)
	defer w.close()
	// Steady state: every partition has committed in the last second.
	if err := w.waitAllAdvance(time.Now(), 90*time.Second); err != nil {
		return 0, "", fmt.Errorf("before the fault: %w", err)
	}
	time.Sleep(3 * time.Second)

	var t0 time.Time
	switch scen {
	case "kill":
		t0 = time.Now()
		a.kill()
	case "restart":
		t0 = time.Now()
		a.kill()
		c, err := startDetector(dir, brokers, model, "c")
		if err != nil {
			return 0, "", err
		}
		defer c.stop()
	case "broker":
		if _, err := kafka(bdir, "stop", "--kill"); err != nil {
			return 0, "", err
		}
		if _, err := kafka(bdir, "start"); err != nil {
			return 0, "", err
		}
		t0 = time.Now()
	default:
		return 0, "", fmt.Errorf("unknown scenario %q", scen)
	}
	if err := w.waitAllAdvance(t0, 180*time.Second); err != nil {
		return 0, "", err
	}
	var worst time.Duration
	var per []string
	for p := range int32(partitions) {
		d := w.firstAdvance[p].Sub(t0)
		worst = max(worst, d)
		per = append(per, fmt.Sprintf("%.1f", d.Seconds()))
	}
	cancel()
	b.stop()
	return worst, strings.Join(per, " "), nil
}

// watcher polls the group's committed offsets every 100 ms.
type watcher struct {
	cl           *kgo.Client
	adm          *kadm.Client
	firstAdvance map[int32]time.Time
}

func newWatcher(brokers string) *watcher {
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers))
	if err != nil {
		fatal(err)
	}
	return &watcher{cl: cl, adm: kadm.NewClient(cl)}
}

func (w *watcher) close() { w.cl.Close() }

// waitAllAdvance waits until every partition's committed offset has grown
// past its value at the first successful read at or after since, and records
// when each did.
func (w *watcher) waitAllAdvance(since time.Time, timeout time.Duration) error {
	base := map[int32]int64{}
	w.firstAdvance = map[int32]time.Time{}
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		offs, err := w.adm.FetchOffsets(ctx, "g")
		cancel()
		now := time.Now()
		if err == nil {
			offs.Each(func(o kadm.OffsetResponse) {
				if o.Topic != "in" || o.Err != nil {
					return
				}
				b, ok := base[o.Partition]
				switch {
				case !ok:
					base[o.Partition] = o.At
				case o.At > b:
					if _, done := w.firstAdvance[o.Partition]; !done {
						w.firstAdvance[o.Partition] = now
					}
				}
			})
			if len(w.firstAdvance) == partitions {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return errors.New("not every partition committed within " + timeout.String())
}
