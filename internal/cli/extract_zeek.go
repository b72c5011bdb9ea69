package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/zeek"
)

type zeekStats struct{ lines, conns, bad, skipped, masked uint64 }

// maxLineErrors caps the bad lines reported one by one per file.
const maxLineErrors = 20

// zeekLog reads one Zeek conn.log; its connections go into order of end
// through a bounded sorter, then through the window.
func (x *extractor) zeekLog(ctx context.Context, r *bufio.Reader, name string, stderr io.Writer) error {
	zr := zeek.NewReader(r)
	var c features.Conn
	reported := 0
	defer func() {
		s := zr.Stats()
		x.zeek.lines += s.Lines
		x.zeek.conns += s.Conns
		x.zeek.bad += s.Bad
		x.zeek.skipped += s.Skipped
		x.zeek.masked += s.Masked
	}()
	for n := 0; ; n++ {
		if n&0xfff == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		err := zr.Next(&c)
		if err == io.EOF {
			if zr.Stats().Lines == 0 && zr.Stats().Bad == 0 {
				return fmt.Errorf("%s: not a pcap / pcapng / Zeek log (no connection lines)", name)
			}
			return x.werr
		}
		var le *zeek.LineError
		if errors.As(err, &le) {
			if reported++; reported <= maxLineErrors {
				fmt.Fprintf(stderr, "extract: %s: %v\n", name, err)
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		x.sorter.Push(&c, x.emit)
		if x.werr != nil {
			return x.werr
		}
	}
}
