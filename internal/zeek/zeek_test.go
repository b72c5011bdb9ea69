package zeek

import (
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/netsentinel/netsentinel/internal/features"
	"github.com/netsentinel/netsentinel/internal/record"
)

// readAll reads every connection and line error of a log.
func readAll(t testing.TB, r io.Reader) ([]features.Conn, []error, Stats) {
	t.Helper()
	zr := NewReader(r)
	var cs []features.Conn
	var errs []error
	for {
		var c features.Conn
		err := zr.Next(&c)
		if err == io.EOF {
			return cs, errs, zr.Stats()
		}
		var le *LineError
		if errors.As(err, &le) {
			errs = append(errs, err)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
}

// TestSamples reads the real conn.logs shipped in testdata (copies of
// ../shared/data/zeek).
func TestSamples(t *testing.T) {
	want := map[string]struct {
		conns, skipped, masked uint64
	}{
		"brimdata-zed.conn.log.gz":                                          {92, 0, 0},
		"btest-core.cisco-fabric-path.conn.log.gz":                          {32, 32, 32},
		"btest-core.tunnels.teredo.conn.log.gz":                             {21, 0, 21},
		"btest-opt.basic.conn.log.gz":                                       {34, 0, 34},
		"btest-scripts.base.frameworks.logging.field-extension.conn.log.gz": {34, 0, 34},
		"zeek-cut-logs.conn.log.gz":                                         {5, 0, 0},
	}
	paths, _ := filepath.Glob("testdata/*.conn.log.gz")
	if len(paths) != len(want) {
		t.Fatalf("testdata holds %d logs, want %d", len(paths), len(want))
	}
	for _, p := range paths {
		t.Run(filepath.Base(p), func(t *testing.T) {
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			zr, err := gzip.NewReader(f)
			if err != nil {
				t.Fatal(err)
			}
			cs, errs, st := readAll(t, zr)
			w := want[filepath.Base(p)]
			if len(errs) > 0 || st.Conns != w.conns || st.Skipped != w.skipped || st.Masked != w.masked || uint64(len(cs)) != w.conns {
				t.Errorf("stats %+v, %d errors (%v), want %+v", st, len(errs), errs, w)
			}
			for _, c := range cs {
				if c.ID.SrcIP == "" || c.ID.UID == "" || !c.Present(record.Service) || !c.Present(record.ProtocolType) || !c.Present(record.Flag) {
					t.Fatalf("incomplete connection %+v", c)
				}
			}
		})
	}
}

const header = "#separator \\x09\n#set_separator\t,\n#empty_field\t(empty)\n#unset_field\t-\n#path\tconn\n" +
	"#fields\tts\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\tservice\tduration\torig_bytes\tresp_bytes\tconn_state\textra\n" +
	"#types\ttime\tstring\taddr\tport\taddr\tport\tenum\tstring\tinterval\tcount\tcount\tstring\tstring\n"

func TestTSV(t *testing.T) {
	log := header +
		"1600000000.5\tC1\t10.0.0.1\t40000\t10.0.0.2\t21\ttcp\tftp\t12.7\t100\t200\tSF\tx\n" +
		"1600000001.0\tC2\t10.0.0.1\t40001\t10.0.0.2\t8080\ttcp\t-\t-\t-\t-\tRSTRH\t(empty)\n" +
		"1600000002.0\tC3\t10.0.0.3\t5353\t10.0.0.2\t53\tudp\tdns\t0.1\t40\t80\tS0\tx\n" +
		"1600000003.0\tC4\t10.0.0.3\t8\t10.0.0.2\t0\ticmp\t-\t0\t64\t64\tOTH\tx\n" +
		"1600000004.0\tC5\t10.0.0.5\t7\t10.0.0.5\t7\ttcp\t-\t0\t0\t0\tS0\tx\n"
	cs, errs, _ := readAll(t, strings.NewReader(log))
	if len(errs) != 0 || len(cs) != 5 {
		t.Fatalf("got %d connections, errors %v", len(cs), errs)
	}
	f := func(i int, feature string, want string) {
		t.Helper()
		c := &cs[i]
		k := -1
		for j, f := range record.Features {
			if f.Name == feature {
				k = j
			}
		}
		got := "absent"
		if c.Present(k) {
			if record.Features[k].Kind == record.KindSymbolic {
				got = c.Symbol(k)
			} else {
				got = strconv.FormatFloat(c.Values[k], 'f', -1, 64)
			}
		}
		if got != want {
			t.Errorf("connection %d: %s = %s, want %s", i+1, feature, got, want)
		}
	}
	f(0, "duration", "12")
	f(0, "service", "ftp")
	f(0, "flag", "SF")
	f(0, "src_bytes", "100")
	f(0, "dst_bytes", "200")
	f(0, "logged_in", "1")
	f(0, "urgent", "absent")
	f(0, "num_failed_logins", "absent")
	f(1, "duration", "absent")
	f(1, "src_bytes", "absent")
	f(1, "logged_in", "absent")
	f(1, "flag", "RSTR")
	f(1, "service", "private")
	f(2, "service", "domain_u")
	f(2, "flag", "SF")
	f(3, "service", "eco_i")
	f(3, "protocol_type", "icmp")
	f(4, "land", "1")
	f(4, "service", "echo")
	if cs[0].ID.TS != 1600000000.5 || cs[0].End != 1600000013200000000 || cs[0].ID.DstPort != 21 {
		t.Errorf("identity %+v end %d", cs[0].ID, cs[0].End)
	}
}

func TestJSON(t *testing.T) {
	log := `{"ts":1600000000.25,"uid":"CJ1","id.orig_h":"2001:db8::1","id.orig_p":51000,"id.resp_h":"2001:db8::2","id.resp_p":80,"proto":"tcp","service":"http","duration":0.5,"orig_bytes":300,"resp_bytes":5000,"conn_state":"SF","history":"ShADadFf"}
{"ts":"2020-09-13T12:26:41.000000Z","uid":"CJ2","id.orig_h":"10.0.0.1","id.orig_p":5000,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp","conn_state":"SF"}
{"ts":1600000005,"uid":"CJ3","id.orig_h":"10.0.0.1","id.orig_p":"x","id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp"}
{"uid":"CJ4","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":53,"proto":"udp"}
not json at all
`
	cs, errs, st := readAll(t, strings.NewReader(log))
	if len(cs) != 2 || len(errs) != 3 || st.Bad != 3 {
		t.Fatalf("%d connections, errors %v", len(cs), errs)
	}
	if cs[0].ID.SrcIP != "2001:db8::1" || cs[0].Symbol(record.Service) != "http" || cs[0].Values[record.DstBytes] != 5000 || cs[0].Values[11] != 1 {
		t.Errorf("first = %+v", cs[0])
	}
	if cs[1].ID.TS != 1600000001 || cs[1].Symbol(record.Service) != "domain_u" {
		t.Errorf("ISO 8601 ts: %+v", cs[1].ID)
	}
	for i, want := range []string{"line 3: field id.orig_p value \"x\": bad value", "line 4: field ts: required field missing", "line 5: not a Zeek conn.log line"} {
		if !strings.HasPrefix(errs[i].Error(), want) {
			t.Errorf("error %d = %q, want %q...", i, errs[i], want)
		}
	}
}

func TestBadTSV(t *testing.T) {
	tests := []struct {
		name, log, want string
	}{
		{"no header", "1600000000.5\tC1\t10.0.0.1\n", "line 1: data line before the #fields header"},
		{"missing ts field", "#fields\tuid\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\tproto\n", "line 1: field ts: required field missing from #fields"},
		{"field count", header + "1600000000.5\tC1\n", "line 8: wrong number of fields"},
		{"bad address", header + "1600000000.5\tC1\t10.0.0.999\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tS0\tx\n", `line 8: field id.orig_h value "10.0.0.999": bad value`},
		{"bad port", header + "1600000000.5\tC1\t10.0.0.1\t70000\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tS0\tx\n", `field id.orig_p value "70000"`},
		{"bad time", header + "16000x\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-\t-\t-\tS0\tx\n", `field ts value "16000x"`},
		{"negative duration", header + "1.5\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t-1\t-\t-\tS0\tx\n", `field duration value "-1"`},
		{"bad count", header + "1.5\tC1\t10.0.0.1\t1\t10.0.0.2\t2\ttcp\t-\t1\t1.5\t-\tS0\tx\n", `field orig_bytes value "1.5"`},
		{"unset required", header + "1.5\tC1\t-\t1\t10.0.0.2\t2\ttcp\t-\t1\t1\t-\tS0\tx\n", `field id.orig_h: required field missing`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs, _ := readAll(t, strings.NewReader(tt.log))
			if len(errs) != 1 || !strings.Contains(errs[0].Error(), tt.want) {
				t.Errorf("errors = %v, want one with %q", errs, tt.want)
			}
		})
	}
}

// TestHeaderRepeats: a log concatenated from rotated parts, each with its
// header, and a changed column order.
func TestHeaderRepeats(t *testing.T) {
	log := header + "1.5\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t1\t1\tSF\tx\n#close\t2020\n" +
		"#separator \\x09\n#fields\tuid\tts\tproto\tid.orig_h\tid.orig_p\tid.resp_h\tid.resp_p\n" +
		"C2\t2.5\tudp\t10.0.0.1\t1\t10.0.0.2\t123\n"
	cs, errs, _ := readAll(t, strings.NewReader(log))
	if len(errs) != 0 || len(cs) != 2 || cs[1].ID.UID != "C2" || cs[1].Symbol(record.Service) != "ntp_u" || cs[1].Present(record.SrcBytes) {
		t.Errorf("connections %+v, errors %v", cs, errs)
	}
}

func TestOffsetAndHeader(t *testing.T) {
	log := header + "1.5\tC1\t10.0.0.1\t1\t10.0.0.2\t80\ttcp\t-\t1\t1\t1\tSF\tx\r\n" + "2.5\tC2\t10.0.0.1\t2\t10.0.0.2\t80\ttcp\t-\t1\t1\t1\tSF\tx"
	zr := NewReader(strings.NewReader(log))
	var c features.Conn
	if err := zr.Next(&c); err != nil {
		t.Fatal(err)
	}
	first := int64(strings.Index(log, "2.5\t"))
	if zr.Offset() != first || string(zr.Header()) != header {
		t.Errorf("Offset = %d, want %d; Header = %q", zr.Offset(), first, zr.Header())
	}
	// A reader started at the offset, given the header first, reads on.
	zr2 := NewReader(io.MultiReader(strings.NewReader(string(zr.Header())), strings.NewReader(log[first:])))
	if err := zr2.Next(&c); err != nil || c.ID.UID != "C2" {
		t.Errorf("resumed reader: %v, uid %q", err, c.ID.UID)
	}
	if err := zr.Next(&c); err != nil || zr.Offset() != int64(len(log)) {
		t.Errorf("last line: %v, offset %d, want %d", err, zr.Offset(), len(log))
	}
}
