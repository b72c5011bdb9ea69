package cli

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/netsentinel/netsentinel/internal/capture/capturetest"
	"github.com/netsentinel/netsentinel/internal/record"
)

func synthPcap(t *testing.T, packets int) ([]byte, capturetest.Counts) {
	t.Helper()
	var buf bytes.Buffer
	c, err := capturetest.WritePcap(&buf, packets, capturetest.Options{Seed: 7})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), c
}

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// decodeRecords parses extract's output lines.
func decodeRecords(t *testing.T, out string) []map[string]any {
	t.Helper()
	var recs []map[string]any
	for i, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("line %d %q: %v", i+1, l, err)
		}
		recs = append(recs, m)
	}
	return recs
}

func TestExtractPcap(t *testing.T) {
	data, counts := synthPcap(t, 3000)
	path := writeFile(t, "x.pcap", data)
	code, out, stderr := run(t, "", "extract", path)
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := decodeRecords(t, out)
	if len(recs) < counts.Conns {
		t.Errorf("%d records from %d connections", len(recs), counts.Conns)
	}
	present := []string{"ts", "src_ip", "src_port", "dst_ip", "dst_port", "uid", "duration", "protocol_type", "service",
		"flag", "src_bytes", "dst_bytes", "land", "wrong_fragment", "urgent", "logged_in", "count", "dst_host_srv_rerror_rate"}
	absent := []string{"hot", "num_compromised", "root_shell", "num_outbound_cmds", "is_host_login"}
	uids := map[string]bool{}
	flags := map[string]int{}
	var lastEnd float64
	for i, m := range recs {
		for _, k := range present {
			if _, ok := m[k]; !ok {
				t.Fatalf("record %d lacks %q: %v", i, k, m)
			}
		}
		for _, k := range absent {
			if _, ok := m[k]; ok {
				t.Fatalf("record %d has %q, which packets cannot show", i, k)
			}
		}
		uid := m["uid"].(string)
		if uids[uid] {
			t.Errorf("uid %s repeated", uid)
		}
		uids[uid] = true
		flags[m["flag"].(string)]++
		// Order of end: ts + duration (whole seconds) never goes back by
		// a second or more.
		end := m["ts"].(float64) + m["duration"].(float64)
		if end < lastEnd-1 {
			t.Errorf("record %d ends at %v, before %v", i, end, lastEnd)
		}
		lastEnd = max(lastEnd, end)
	}
	for _, f := range []string{"SF", "REJ", "S0"} {
		if flags[f] == 0 {
			t.Errorf("no %s connection among %v", f, flags)
		}
	}
	if !strings.Contains(stderr, "3000 packets") {
		t.Errorf("summary: %s", stderr)
	}

	// The same capture gzip-compressed, from standard input, gives the same.
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	_, _ = zw.Write(data)
	_ = zw.Close()
	code, out2, _ := run(t, gz.String(), "extract", "-")
	if code != ExitOK || out2 != out {
		t.Errorf("gzip on stdin: exit %d, same output %v", code, out2 == out)
	}
}

func TestExtractBadInput(t *testing.T) {
	data, _ := synthPcap(t, 500)
	// Cut inside the last packet.
	trunc := writeFile(t, "t.pcap", data[:len(data)-10])
	code, out, stderr := run(t, "", "extract", trunc)
	if code != ExitBadData || !strings.Contains(stderr, "truncated after 499 packets") {
		t.Errorf("truncated: exit %d, stderr %s", code, stderr)
	}
	if out == "" {
		t.Error("truncated: no records for the packets read")
	}
	code, _, stderr = run(t, "", "extract", writeFile(t, "x.txt", []byte("hello, world\n")))
	if code != ExitFailure || !strings.Contains(stderr, "not a pcap / pcapng / Zeek log") {
		t.Errorf("text: exit %d, stderr %s", code, stderr)
	}
	code, _, stderr = run(t, "", "extract", "--format", "pcap", writeFile(t, "x.log", []byte("#separator \\x09\n")))
	if code != ExitFailure || !strings.Contains(stderr, "not a pcap or pcapng file") {
		t.Errorf("--format pcap on a log: exit %d, stderr %s", code, stderr)
	}
	// A corrupt packet in the middle is counted and skipped.
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	_ = w.WriteFileHeader(65535, layers.LinkTypeEthernet)
	good := tcpFrame(t, "S")
	ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000, 0), CaptureLength: len(good), Length: len(good)}
	_ = w.WritePacket(ci, good)
	bad := good[:20]
	_ = w.WritePacket(gopacket.CaptureInfo{Timestamp: ci.Timestamp, CaptureLength: len(bad), Length: len(bad)}, bad)
	code, out, stderr = run(t, "", "extract", writeFile(t, "c.pcap", buf.Bytes()))
	if code != ExitBadData || !strings.Contains(stderr, "1 corrupt packets skipped") || strings.Count(out, "\n") != 1 {
		t.Errorf("corrupt packet: exit %d, stderr %s, out %s", code, stderr, out)
	}
	code, _, _ = run(t, "", "extract")
	if code != ExitUsage {
		t.Errorf("no arguments: exit %d, want %d", code, ExitUsage)
	}
}

func tcpFrame(t *testing.T, flags string) []byte {
	t.Helper()
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}, Protocol: layers.IPProtocolTCP}
	tc := &layers.TCP{SrcPort: 40000, DstPort: 21, SYN: strings.Contains(flags, "S"), ACK: strings.Contains(flags, "A")}
	_ = tc.SetNetworkLayerForChecksum(ip)
	buf := gopacket.NewSerializeBuffer()
	err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&layers.Ethernet{SrcMAC: make([]byte, 6), DstMAC: make([]byte, 6), EthernetType: layers.EthernetTypeIPv4}, ip, tc)
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestExtractPcapNG(t *testing.T) {
	var buf bytes.Buffer
	w, err := pcapgo.NewNgWriter(&buf, layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range []string{"S", "S"} {
		fr := tcpFrame(t, f)
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(1700000000+int64(i), 0), CaptureLength: len(fr), Length: len(fr)}
		if err := w.WritePacket(ci, fr); err != nil {
			t.Fatal(err)
		}
	}
	_ = w.Flush()
	code, out, stderr := run(t, "", "extract", writeFile(t, "x.pcapng", buf.Bytes()))
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := decodeRecords(t, out)
	if len(recs) != 1 || recs[0]["flag"] != "S0" || recs[0]["service"] != "ftp" || recs[0]["ts"] != 1700000000.0 ||
		recs[0]["num_failed_logins"] != 0.0 || recs[0]["duration"] != 1.0 {
		t.Errorf("records = %v", recs)
	}
}

// TestExtractPredict runs pcap -> extract -> predict. Records from packets
// lack most content features: the model fills them in with normal values
// (filled_in counts them) and scores the record, whose identity passes
// through into the verdict. A record that lacks a traffic feature is still
// a line error naming it.
func TestExtractPredict(t *testing.T) {
	model := trainSmall(t)
	data, _ := synthPcap(t, 400)
	code, out, _ := run(t, "", "extract", writeFile(t, "x.pcap", data))
	if code != ExitOK {
		t.Fatalf("extract exit %d", code)
	}
	recs := strings.Split(strings.TrimSpace(out), "\n")
	var m map[string]any
	if err := json.Unmarshal([]byte(recs[0]), &m); err != nil {
		t.Fatal(err)
	}
	absent := 0
	for _, f := range record.Features {
		if _, ok := m[f.Name]; !ok {
			absent++
		}
	}
	if absent == 0 {
		t.Fatalf("record from packets has all 41 features: %v", m)
	}
	// A record without a traffic feature cannot be completed.
	delete(m, "count")
	partial, _ := json.Marshal(m)
	code, pout, _ := run(t, out+string(partial)+"\n", "predict", "--model", model)
	if code != ExitBadData {
		t.Fatalf("predict exit %d, want %d", code, ExitBadData)
	}
	lines := decodeRecords(t, pout)
	if len(lines) != len(recs)+1 {
		t.Fatalf("%d verdict lines for %d records", len(lines), len(recs)+1)
	}
	for i, v := range lines[:len(recs)] {
		var in map[string]any
		if err := json.Unmarshal([]byte(recs[i]), &in); err != nil {
			t.Fatal(err)
		}
		if v["attack"] == nil || v["src_ip"] != in["src_ip"] || v["dst_port"] != in["dst_port"] || v["uid"] != in["uid"] || v["ts"] != in["ts"] {
			t.Fatalf("verdict %v does not carry the identity of %v", v, in)
		}
		if v["filled_in"] == nil || v["filled_in"].(float64) < 1 {
			t.Fatalf("verdict %v: want filled_in > 0 for a record from packets", v)
		}
	}
	e, _ := lines[len(recs)]["error"].(string)
	if !strings.Contains(e, "count") || !strings.Contains(e, "only content features can be filled in") {
		t.Errorf("error line = %v", lines[len(recs)])
	}
}

func TestExtractZeek(t *testing.T) {
	code, out, stderr := run(t, "", "extract", "../zeek/testdata/brimdata-zed.conn.log.gz", "../zeek/testdata/btest-opt.basic.conn.log.gz")
	if code != ExitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	recs := decodeRecords(t, out)
	if len(recs) != 92+34 || !strings.Contains(stderr, "34 with masked timestamps") {
		t.Errorf("%d records; %s", len(recs), stderr)
	}
	for _, m := range recs {
		if _, ok := m["wrong_fragment"]; ok {
			t.Fatalf("wrong_fragment from a Zeek log: %v", m)
		}
		if _, ok := m["dst_host_count"]; !ok {
			t.Fatalf("no traffic features: %v", m)
		}
	}
	// JSON lines out of order come out in order of end; a bad line is
	// reported with its number and makes the exit code 3.
	log := `{"ts":100.0,"uid":"A","id.orig_h":"10.0.0.1","id.orig_p":1,"id.resp_h":"10.0.0.2","id.resp_p":80,"proto":"tcp","duration":2.5,"conn_state":"SF"}
{"ts":101.0,"uid":"B","id.orig_h":"10.0.0.1","id.orig_p":2,"id.resp_h":"10.0.0.2","id.resp_p":80,"proto":"tcp","duration":1.0,"conn_state":"REJ"}
{"ts":"oops","uid":"C","id.orig_h":"10.0.0.1","id.orig_p":2,"id.resp_h":"10.0.0.2","id.resp_p":80,"proto":"tcp"}
`
	code, out, stderr = run(t, log, "extract", "--format", "zeek", "-")
	recs = decodeRecords(t, out)
	if code != ExitBadData || len(recs) != 2 || recs[0]["uid"] != "B" || recs[1]["uid"] != "A" ||
		!strings.Contains(stderr, `stdin: line 3: field ts value "oops": bad value`) {
		t.Errorf("exit %d, records %v, stderr %s", code, recs, stderr)
	}
	if recs[1]["count"] != 2.0 || recs[1]["rerror_rate"] != 0.5 {
		t.Errorf("traffic features of A = count %v rerror_rate %v, want 2 0.5", recs[1]["count"], recs[1]["rerror_rate"])
	}
	code, _, stderr = run(t, "", "extract", "--format", "zeek", writeFile(t, "x.pcap", synthPcapHead(t)))
	if code != ExitFailure || !strings.Contains(stderr, "a packet capture, not a Zeek log") {
		t.Errorf("--format zeek on a pcap: exit %d, %s", code, stderr)
	}
}

func synthPcapHead(t *testing.T) []byte {
	data, _ := synthPcap(t, 10)
	return data
}
