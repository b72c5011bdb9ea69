// Command trainbench times what 'netsentinel train' does with its defaults:
// it trains the default detector (model.DefaultTrainOptions: the forest and
// the novelty part) on every row of a labelled file and prints the training
// time, wall and CPU, of the whole and of each part. bench/train_vs_sklearn.sh
// runs it next to scikit-learn on the same rows.
//
//	go run ./bench/trainbench -data data/kddcup.data_10_percent.gz -repeat 3
//
// With -export FILE the rows are also written as CSV (41 numeric features,
// symbolic ones as their codes, then the label) for the scikit-learn side;
// with -cpuprofile FILE the fastest run's CPU profile is written.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/model"
	"github.com/netsentinel/netsentinel/internal/testkit"
)

// result is printed as one JSON line with -json.
type result struct {
	Tool         string  `json:"tool"`
	Data         string  `json:"data"`
	Rows         int     `json:"rows"`
	Config       string  `json:"config"`
	TrainSeconds float64 `json:"train_seconds"`
	TrainCPU     float64 `json:"train_cpu_seconds"`
	ForestSec    float64 `json:"forest_seconds"`
	ForestCPU    float64 `json:"forest_cpu_seconds"`
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "trainbench:", err)
		os.Exit(1)
	}
}

func run() error {
	data := flag.String("data", "data/kddcup.data_10_percent.gz", "labelled `file` of records")
	repeat := flag.Int("repeat", 1, "train `n` times and report the fastest run")
	asJSON := flag.Bool("json", false, "print one JSON line")
	export := flag.String("export", "", "also write the rows as CSV to this `file`")
	profile := flag.String("cpuprofile", "", "write a CPU profile of the training runs to this `file`")
	flag.Parse()
	ds, err := dataset.Load(*data, dataset.Options{})
	if err != nil {
		return err
	}
	if *export != "" {
		if err := writeCSV(*export, ds); err != nil {
			return err
		}
	}
	if *profile != "" {
		f, err := os.Create(*profile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	r := result{Tool: "netsentinel", Data: *data, Rows: ds.Len(), Config: "default detector (model.DefaultTrainOptions)"}
	r.TrainSeconds, r.TrainCPU, r.ForestSec, r.ForestCPU = 1e9, 1e9, 1e9, 1e9
	for range max(1, *repeat) {
		w, c, err := timed(func() error {
			_, err := model.Train(context.Background(), ds, model.DefaultTrainOptions())
			return err
		})
		if err != nil {
			return err
		}
		r.TrainSeconds, r.TrainCPU = min(r.TrainSeconds, w), min(r.TrainCPU, c)
		opts := model.DefaultTrainOptions()
		opts.Novelty = nil
		w, c, err = timed(func() error {
			_, err := model.Train(context.Background(), ds, opts)
			return err
		})
		if err != nil {
			return err
		}
		r.ForestSec, r.ForestCPU = min(r.ForestSec, w), min(r.ForestCPU, c)
	}
	if *asJSON {
		return json.NewEncoder(os.Stdout).Encode(r)
	}
	fmt.Printf("%s: %d rows; default detector %.2f s (%.2f CPU-s); forest alone %.2f s (%.2f CPU-s)\n",
		r.Data, r.Rows, r.TrainSeconds, r.TrainCPU, r.ForestSec, r.ForestCPU)
	return nil
}

// timed runs f and returns its wall and CPU time in seconds.
func timed(f func() error) (wall, cpu float64, err error) {
	c0, t0 := testkit.CPUTime(), time.Now()
	err = f()
	return time.Since(t0).Seconds(), (testkit.CPUTime() - c0).Seconds(), err
}

func writeCSV(path string, ds *dataset.Dataset) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	var b []byte
	for i := range ds.Len() {
		b = b[:0]
		for j := range ds.X {
			b = strconv.AppendFloat(b, float64(ds.X[j][i]), 'g', -1, 32)
			b = append(b, ',')
		}
		b = append(b, ds.Labels[i]...)
		b = append(b, '\n')
		w.Write(b)
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Close()
}
