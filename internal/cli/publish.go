package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/record"
	"github.com/netsentinel/netsentinel/internal/stream"
)

var cmdPublish = &Command{
	Name:      "publish",
	UsageLine: "publish --brokers HOST:PORT,... --topic T --file F [--format csv|json] [--rate N/s] [--loop] [--key uuid|none]",
	Short:     "replay a file of connection records into a Kafka topic",
	Long: `
Publish reads connection records from --file (KDD'99 / NSL-KDD CSV lines or
JSON objects, plain or .gz) and writes each one, label included, to the
Kafka topic as a CSV line or a JSON object (--format). Records that carry a
connection's identity or leave features out (netsentinel extract's output)
are always written as JSON objects, since CSV holds neither. Records are
keyed by a random UUID unless --key none.

The producer is idempotent, batches records and waits for every broker
acknowledgement. Publish fails at once if no broker answers within
--connect-timeout. --rate limits records per second; --loop replays the file
until interrupted. A progress bar shows on a terminal; at the end publish
prints the records delivered and the rate achieved.

Every produce error is counted and reported: publish exits 1 if any record
was not delivered. Lines that do not decode are skipped, counted, and make
publish exit 3.
`,
	Flags: publishFlags,
}

func publishFlags(fs *flag.FlagSet) RunFunc {
	kf := addKafkaFlags(fs)
	def := stream.DefaultPublisherOptions()
	topic := fs.String("topic", stream.DefaultTopic, "Kafka `topic` to write to")
	file := fs.String("file", "", "`file` of records to replay (CSV or JSON lines, plain or .gz; required)")
	format := fs.String("format", "csv", "output format: csv or json")
	rate := fs.String("rate", "0", "maximum records per second, as N or N/s (0 = unlimited)")
	loop := fs.Bool("loop", false, "replay the file again and again until interrupted")
	key := fs.String("key", "uuid", "record key: uuid (random) or none")
	limit := fs.Int64("limit", 0, "stop after this many records (0 = the whole file)")
	timeout := fs.Duration("delivery-timeout", def.DeliveryTimeout, "give up on a record not acknowledged within this `duration`")
	connectTimeout := fs.Duration("connect-timeout", def.ConnectTimeout, "fail if no broker answers within this `duration` at start")
	return func(ctx context.Context, env *Env, args []string) error {
		if len(args) > 0 {
			return Usagef("unexpected arguments %q", args)
		}
		if *file == "" {
			return Usagef("--file is required")
		}
		if *format != "csv" && *format != "json" {
			return Usagef("--format %q: want csv or json", *format)
		}
		if *key != "uuid" && *key != "none" {
			return Usagef("--key %q: want uuid or none", *key)
		}
		r, err := parseRate(*rate)
		if err != nil {
			return Usagef("--rate: %w", err)
		}
		ccfg, err := kf.config()
		if err != nil {
			return err
		}
		o := def
		o.Client, o.Topic, o.Rate, o.DeliveryTimeout, o.ConnectTimeout = ccfg, *topic, r, *timeout, *connectTimeout
		pub, err := stream.NewPublisher(o)
		if err != nil {
			return err
		}
		p := &publishRun{pub: pub, json: *format == "json", uuid: *key == "uuid", limit: *limit, stderr: env.Stderr,
			rng: rand.New(rand.NewPCG(rand.Uint64(), rand.Uint64()))}
		runErr := p.run(ctx, *file, *loop)
		closeCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 60*time.Second)
		defer cancel()
		st, closeErr := pub.Close(closeCtx)
		fmt.Fprintf(env.Stdout, "published %d records to %s in %.2fs (%.0f records/s)", st.Delivered, *topic, st.Elapsed.Seconds(), st.Rate())
		if st.Failed > 0 || st.Delivered != st.Sent {
			fmt.Fprintf(env.Stdout, "; %d NOT delivered", st.Sent-st.Delivered)
		}
		if p.bad > 0 {
			fmt.Fprintf(env.Stdout, "; %d invalid lines skipped", p.bad)
		}
		fmt.Fprintln(env.Stdout)
		switch {
		case closeErr != nil:
			return closeErr
		case runErr != nil && !(*loop && errors.Is(runErr, context.Canceled)):
			return runErr
		case p.bad > 0:
			return fmt.Errorf("%d invalid lines skipped: %w", p.bad, ErrBadData)
		}
		return nil
	}
}

// parseRate parses "N" or "N/s".
func parseRate(s string) (float64, error) {
	s = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(s), "/s"))
	r, err := strconv.ParseFloat(s, 64)
	if err != nil || r < 0 || r != r {
		return 0, fmt.Errorf("%q is not a rate (want N or N/s, N >= 0)", s)
	}
	return r, nil
}

type publishRun struct {
	pub    *stream.Publisher
	json   bool
	uuid   bool
	limit  int64
	stderr io.Writer
	rng    *rand.Rand
	sent   int64
	bad    int64
}

func (p *publishRun) run(ctx context.Context, path string, loop bool) error {
	for pass := 0; ; pass++ {
		if err := p.file(ctx, path); err != nil {
			return err
		}
		if !loop || (p.limit > 0 && p.sent >= p.limit) {
			return nil
		}
		if p.sent == 0 {
			return errors.New("no records in the file: nothing to loop over")
		}
	}
}

func (p *publishRun) file(ctx context.Context, path string) error {
	in, err := dataset.Open(path)
	if err != nil {
		return err
	}
	defer in.Close()
	lines := bufio.NewReaderSize(in, 1<<16)
	bar := newProgress(p.stderr, "publish", true)
	defer bar.done()
	var rec record.Record
	var long []byte
	for lineNo := 1; ; lineNo++ {
		line, err := lines.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			long = append(long[:0], line...)
			for errors.Is(err, bufio.ErrBufferFull) {
				line, err = lines.ReadSlice('\n')
				long = append(long, line...)
			}
			line = long
		}
		if len(line) > 0 && len(strings.TrimSpace(string(trimLine(line)))) > 0 {
			if derr := record.DecodePartial(line, &rec); derr != nil {
				p.bad++
				if p.bad <= 5 {
					fmt.Fprintf(p.stderr, "netsentinel publish: %s:%d: %v (skipped)\n", path, lineNo, derr)
				}
			} else {
				if perr := p.publish(ctx, &rec); perr != nil {
					return perr
				}
				if p.sent%4096 == 0 {
					// Stay below 100% until the end: a full bar finishes
					// and clears itself.
					done, size := in.RawBytes()
					bar.update(min(done, size-1), size)
				}
				if p.limit > 0 && p.sent >= p.limit {
					return nil
				}
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
	}
}

func trimLine(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func (p *publishRun) publish(ctx context.Context, rec *record.Record) error {
	var v []byte
	// CSV holds neither a connection's identity nor absent features.
	if p.json || rec.Absent != 0 || rec.ID.Known() || rec.ID.SrcPort >= 0 || rec.ID.DstPort >= 0 {
		v = rec.AppendJSON(make([]byte, 0, 900))
	} else {
		v = rec.AppendCSV(make([]byte, 0, 160))
	}
	var k []byte
	if p.uuid {
		k = appendUUID(make([]byte, 0, 36), p.rng)
	}
	p.sent++
	return p.pub.Publish(ctx, k, v)
}

// appendUUID appends a random (version 4) UUID in its text form.
func appendUUID(dst []byte, rng *rand.Rand) []byte {
	var u [16]byte
	a, b := rng.Uint64(), rng.Uint64()
	for i := range 8 {
		u[i], u[8+i] = byte(a>>(8*i)), byte(b>>(8*i))
	}
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0xf])
	}
	return dst
}
