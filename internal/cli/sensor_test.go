package cli

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/netsentinel/netsentinel/internal/capture"
	"github.com/netsentinel/netsentinel/internal/stream"
)

// TestSensorLive runs `netsentinel sensor --interface lo` against an
// in-process Kafka, makes a real TCP connection on 127.0.0.1 and expects
// its record, flag SF, once the sensor stops (needs CAP_NET_RAW).
func TestSensorLive(t *testing.T) {
	if l, err := capture.OpenLive("lo", 128, time.Millisecond); err != nil {
		t.Skipf("no live capture here: %v", err)
	} else {
		l.Close()
	}
	broker := fakeKafka(t, 3, stream.DefaultTopic)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, c)
			_, _ = c.Write([]byte("bye\n"))
			c.Close()
		}
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() {
		done <- Main(ctx, []string{"sensor", "--brokers", broker, "--id", "lo-test", "--interface", "lo", "--listen", "none", "--commit-interval", "50ms"},
			&Env{Stdin: strings.NewReader(""), Stdout: io.Discard, Stderr: &stderr})
	}()
	// Wait for the capture to run, then connect.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "sensor capturing") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Write([]byte("hello sensor\n"))
	_ = c.(*net.TCPConn).CloseWrite()
	_, _ = io.ReadAll(c)
	c.Close()
	time.Sleep(100 * time.Millisecond) // the last ACK is sent as the FIN arrives; the sensor drains its socket at shutdown
	cancel()
	if code := <-done; code != ExitOK {
		t.Fatalf("sensor exit %d: %s", code, stderr.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(stream.DefaultTopic),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var found map[string]any
	for found == nil {
		pctx, pcancel := context.WithTimeout(context.Background(), 2*time.Second)
		fs := cl.PollFetches(pctx)
		pcancel()
		n := 0
		fs.EachRecord(func(r *kgo.Record) {
			n++
			var m map[string]any
			if json.Unmarshal(r.Value, &m) == nil && m["dst_port"] == float64(port) {
				found = m
			}
		})
		if n == 0 {
			break
		}
	}
	if found == nil {
		t.Fatalf("no record of the connection to port %d; stderr: %s", port, stderr.String())
	}
	if found["flag"] != "SF" || found["src_bytes"] != 13.0 || found["dst_bytes"] != 4.0 || found["src_ip"] != "127.0.0.1" {
		t.Errorf("record = %v", found)
	}
	if !regexp.MustCompile(`kernel: [1-9][0-9]* packets, [0-9]+ dropped \([0-9.]+%\)`).MatchString(stderr.String()) {
		t.Errorf("no summary with the kernel's packet and drop counts: %s", stderr.String())
	}
}
