package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/conntrack"
	"github.com/netsentinel/netsentinel/internal/dataset"
	"github.com/netsentinel/netsentinel/internal/features"
)

var cmdExtract = &Command{
	Name:      "extract",
	UsageLine: "extract [--format auto|pcap|zeek] [--host-window N] [--max-conns N] FILE... | -",
	Short:     "turn pcap/pcapng captures and Zeek conn.logs into connection records",
	Long: `
Extract reads packet captures (pcap or pcapng) or Zeek conn.log files (TSV
with its #fields header, or JSON lines), plain or gzip-compressed, and
prints one JSON object per connection on standard output, in order of
connection end. "-" reads standard input. Several files are read as one
stream, in the order given (the parts of a rotated capture).

Each object holds the identity of the connection under "ts" (its start, in
seconds since the epoch), "src_ip", "src_port", "dst_ip", "dst_port" (the
originator is src) and "uid", then the KDD'99 features under their KDD names.
A feature the source cannot show is absent, never 0: from packets, the
intrinsic features, logged_in (num_failed_logins and is_guest_login too
for FTP) and the 19 traffic features; from Zeek, the intrinsic features
Zeek logs and the traffic features.

TCP connections follow Zeek's conn_state rules; the flag is Zeek's state
(RSTRH becomes RSTR, SHR becomes OTH). The traffic features use a 2-second
window and the last --host-window connections.

At the end a summary goes to standard error. Packets that cannot be decoded
are counted and skipped. A capture that ends inside a packet is reported
with the number of packets read, and the command exits with code 3, as it
does when packets or log lines were bad. Input that is neither a capture
nor a Zeek log is an error.
`,
	Flags: extractFlags,
}

func extractFlags(fs *flag.FlagSet) RunFunc {
	format := fs.String("format", "auto", "input format: auto (by content), pcap (pcap or pcapng) or zeek")
	hostWindow := fs.Int("host-window", features.DefaultOptions().HostWindow,
		"connections the dst_host_* features look back over (`N`; the KDD files show counts up to 255)")
	maxConns := fs.Int("max-conns", conntrack.DefaultConfig().MaxConns,
		"open connections tracked at most (`N`); past it the oldest half-open ones are finished early")
	return func(ctx context.Context, env *Env, args []string) error {
		if *format != "auto" && *format != "pcap" && *format != "zeek" {
			return Usagef("--format %q: want auto, pcap or zeek", *format)
		}
		if *hostWindow <= 0 || *maxConns <= 0 {
			return Usagef("--host-window and --max-conns must be positive")
		}
		if len(args) == 0 {
			return Usagef("no input: name files or - for standard input")
		}
		x := newExtractor(env.Stdout, features.Options{HostWindow: *hostWindow}, conntrack.Config{MaxConns: *maxConns})
		var bad []error
		for _, name := range args {
			if err := ctx.Err(); err != nil {
				return err
			}
			err := x.file(ctx, env, name, *format)
			if errors.Is(err, errBadInput) {
				bad = append(bad, err)
				continue
			}
			if err != nil {
				return err
			}
		}
		if err := x.finish(); err != nil {
			return err
		}
		fmt.Fprintln(env.Stderr, x.summary())
		if len(bad) > 0 || x.corrupt() > 0 {
			return fmt.Errorf("%w: %w", errors.Join(append(bad, x.badSummary()...)...), ErrBadData)
		}
		return nil
	}
}

// errBadInput marks an input file that was read only in part.
var errBadInput = errors.New("bad input")

// extractor runs packets through one tracker and connections through one
// window, writing the records as JSON lines.
type extractor struct {
	w       *bufio.Writer
	win     *features.Window
	tr      *conntrack.Tracker
	buf     []byte
	werr    error
	records uint64
	zeek    zeekStats
	sorter  features.Sorter
}

func newExtractor(out io.Writer, fo features.Options, co conntrack.Config) *extractor {
	x := &extractor{w: bufio.NewWriterSize(out, 1<<16), win: features.NewWindow(fo)}
	x.tr = conntrack.New(co, x.emit)
	return x
}

func (x *extractor) emit(c *features.Conn) {
	x.win.Add(c)
	x.records++
	if x.werr != nil {
		return
	}
	x.buf = c.AppendJSON(x.buf[:0])
	x.buf = append(x.buf, '\n')
	_, x.werr = x.w.Write(x.buf)
}

// file reads one input. A file that is read only in part gives an error
// wrapping errBadInput.
func (x *extractor) file(ctx context.Context, env *Env, name, format string) error {
	var in io.Reader = env.Stdin
	display := "stdin"
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return err
		}
		defer f.Close()
		in, display = f, name
	}
	dr, err := dataset.NewReader(in, display) // gunzips; a cut gzip stream is an error
	if err != nil {
		return err
	}
	br := bufio.NewReaderSize(dr, 1<<20)
	head, _ := br.Peek(4)
	kind := capture.Sniff(head)
	isCapture := kind == capture.KindPcap || kind == capture.KindPcapNG
	switch {
	case format == "pcap" && !isCapture:
		return fmt.Errorf("%s: not a pcap or pcapng file", display)
	case format == "zeek" && isCapture:
		return fmt.Errorf("%s: a packet capture, not a Zeek log", display)
	case isCapture:
		return x.capture(ctx, br, display)
	case format == "zeek" || kind == capture.KindText:
		return x.zeekLog(ctx, br, display, env.Stderr)
	}
	return fmt.Errorf("%s: not a pcap / pcapng / Zeek log", display)
}

func (x *extractor) capture(ctx context.Context, r *bufio.Reader, name string) error {
	src, err := capture.OpenFile(r)
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	for n := 0; ; n++ {
		if n&0xffff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		f, err := src.Next()
		if err == io.EOF {
			return x.werr
		}
		if err != nil {
			return fmt.Errorf("%s: %w (%w)", name, err, errBadInput)
		}
		_ = x.tr.Packet(f.TS, f.Link, f.Data)
		if x.werr != nil {
			return x.werr
		}
	}
}

// finish flushes the tracker and the output.
func (x *extractor) finish() error {
	x.tr.Flush()
	x.sorter.Flush(x.emit)
	if x.werr != nil {
		return x.werr
	}
	return x.w.Flush()
}

func (x *extractor) corrupt() uint64 {
	return x.tr.Stats().Corrupt + x.zeek.bad
}

func (x *extractor) badSummary() []error {
	var errs []error
	if c := x.tr.Stats().Corrupt; c > 0 {
		errs = append(errs, fmt.Errorf("%d corrupt packets skipped", c))
	}
	if x.zeek.bad > 0 {
		errs = append(errs, fmt.Errorf("%d bad Zeek log lines skipped", x.zeek.bad))
	}
	return errs
}

func (x *extractor) summary() string {
	s := x.tr.Stats()
	ws := x.win.Stats()
	out := fmt.Sprintf("extract: %d records", x.records)
	if s.Packets > 0 {
		out += fmt.Sprintf("; %d packets: %d tracked, %d not IP, %d other protocols, %d corrupt, %d fragments dropped; %d connections evicted (--max-conns), %d released out of order",
			s.Packets, s.Tracked, s.NotIP, s.Unsupported, s.Corrupt, s.FragDropped, s.Evicted, s.Reordered)
	}
	if x.zeek.lines > 0 {
		out += fmt.Sprintf("; %d Zeek log lines: %d connections, %d bad, %d skipped (not tcp/udp/icmp), %d with masked timestamps",
			x.zeek.lines, x.zeek.conns, x.zeek.bad, x.zeek.skipped, x.zeek.masked)
	}
	if ws.SpanEvicted > 0 || ws.Clamped > 0 {
		out += fmt.Sprintf("; traffic window: %d dropped early, %d out of order", ws.SpanEvicted, ws.Clamped)
	}
	return out
}
